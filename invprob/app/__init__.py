"""The application layer: the ``invprob`` command (solve, train, demo, list, fetch-prior), its
Hydra configuration and the reports a run writes. Imports the library; the library never imports it."""
