"""The ``invprob`` command: ``solve``, ``calibrate`` and ``train`` (Hydra apps), ``demo``, ``list``, ``fetch-prior``,
``fetch-data``."""

from __future__ import annotations

import sys

USAGE = """usage: invprob COMMAND [ARGS]

commands:
  solve        sample a posterior: invprob solve prior=... operator=... solver=... [key=value ...]
               (invprob solve --help lists the presets and settings)
  calibrate    tune a solver preset for your operator and prior on simulated pairs, written as a new preset:
               invprob calibrate prior=... operator=... solver=... [input=images/] [budget=N ...]
  demo         the default reconstruction (4x MRI of a held-apart brain slice); demo mnist-gmm: the exact check
  list         the presets (solvers, operators, priors) and whether each prior's weights are present
  train        train a prior: invprob train data=... out=... [key=value ...]
  fetch-prior  download a prior's weights into the cache: invprob fetch-prior NAME
  fetch-data   install a data set (checked by sha256): invprob fetch-data NAME [--verify]"""


def main(argv: list[str] | None = None) -> int:
    try:
        return _dispatch(sys.argv[1:] if argv is None else list(argv))
    except BrokenPipeError:  # output piped into a reader that stopped early (`invprob list | head`)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


def _dispatch(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else (None, [])
    if command in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if command == "solve":
        from .solve import main as solve_main

        return solve_main(rest)
    if command == "calibrate":
        from .calibrate import main as calibrate_main

        return calibrate_main(rest)
    if command == "demo":
        from .demo import main as demo_main

        return demo_main(rest)
    if command == "train":
        from .train import main as train_main

        return train_main(rest)
    if command == "fetch-prior":
        return fetch_prior(rest)
    if command == "fetch-data":
        return fetch_data(rest)
    if command == "list":
        return list_presets()
    print(USAGE, file=sys.stderr)
    if command is not None:
        print(f"error: unknown command {command!r}", file=sys.stderr)
    return 2


def list_presets() -> int:
    """Print every preset per group; priors with their weights' status."""
    from ..priors.cards import weights_status
    from ..registry import available, load_preset, presets

    for group, names in available().items():
        print(f"{group}:")
        yaml_presets = set(presets(group))
        for name in names:
            status = "plugin" if name not in yaml_presets else (
                weights_status(load_preset(group, name)) if group == "priors" else "")
            print(f"  {name}{f'  ({status})' if status else ''}")
    from ..datasets import DATASETS, data_root

    print(f"data sets (in {data_root()}; `invprob fetch-data NAME` installs one):")
    for name, dataset in DATASETS.items():
        present = sum((data_root() / dataset.folder / f).is_file() for f in dataset.files)
        print(f"  {name}  ({present}/{len(dataset.files)} files present)")
    return 0


def fetch_data(argv: list[str]) -> int:
    """``invprob fetch-data NAME [--verify]``: install a data set under $INVPROB_DATA or the cache."""
    import argparse

    from ..datasets import DATASETS, fetch
    from ..errors import DataNotFoundError, InputError

    parser = argparse.ArgumentParser(prog="invprob fetch-data", description=fetch_data.__doc__)
    parser.add_argument("name", help=f"one of {', '.join(DATASETS)}")
    parser.add_argument("--verify", action="store_true", help="also re-hash the files already present")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.name not in DATASETS:
        print(f"error: `name`: unknown data set {args.name!r}; choose one of {', '.join(DATASETS)}.", file=sys.stderr)
        return 2
    try:
        folder = fetch(args.name, verify=args.verify, progress=not args.quiet)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except DataNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.name}: {len(DATASETS[args.name].files)} files ready in {folder}")
    return 0


def fetch_prior(argv: list[str]) -> int:
    """``invprob fetch-prior NAME [--folder DIR]``: download a model card's weights into the cache."""
    import argparse

    from ..errors import CheckpointError
    from ..priors.cards import fetch
    from ..registry import available, load_preset

    parser = argparse.ArgumentParser(prog="invprob fetch-prior", description=fetch_prior.__doc__)
    parser.add_argument("name", help="a prior preset with a model card (see `invprob list`)")
    parser.add_argument("--folder", default=None, help="where to put the files (default: the cache)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        config = load_preset("priors", args.name)
    except KeyError as err:
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 2
    if "card" not in config:
        cards = [n for n in available()["priors"] if "card" in load_preset("priors", n)]
        print(f"error: prior {args.name!r} has no model card to fetch (shipped or analytic); priors with "
              f"cards: {', '.join(cards)}.", file=sys.stderr)
        return 2
    try:
        root = fetch(config["card"], args.folder, progress=not args.quiet)
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.name}: files ready in {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
