"""Config groups shipped with the wheel (``solvers/``, ``operators/``, ``priors/``).

In a source checkout they live at the repository's top level; the build maps them here.
"""
