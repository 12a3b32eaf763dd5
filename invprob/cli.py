"""The ``invprob`` command: ``solve`` (Hydra app), ``demo``, ``list``, ``train``, ``fetch-prior``."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["demo"]:
        from .demo import main as demo_main

        return demo_main(argv[1:])
    if argv[:1] == ["solve"]:
        from .solve_app import main as solve_main

        return solve_main(argv[1:])
    if argv[:1] == ["train"]:
        from .training import hydra_main

        return hydra_main(argv[1:])
    if argv[:1] == ["fetch-prior"]:
        return _fetch_prior(argv[1:])
    if argv[:1] == ["list"]:
        from .registry import available, load_preset

        for group, names in available().items():
            print(f"{group}:")
            for name in names:
                print(f"  {name}{_weights_status(group, name, load_preset) if group == 'priors' else ''}")
        return 0
    print("usage: invprob {solve,demo,list,train,fetch-prior}", file=sys.stderr)
    return 2


def _fetch_prior(argv: list[str]) -> int:
    """``invprob fetch-prior NAME [--folder DIR]``: download a model card's weights into the cache."""
    import argparse

    from .priors.cards import fetch
    from .priors.loading import CheckpointError
    from .registry import available, load_preset

    parser = argparse.ArgumentParser(prog="invprob fetch-prior", description=_fetch_prior.__doc__)
    parser.add_argument("name")
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



def _weights_status(group: str, name: str, load_preset) -> str:
    """For shipped priors: whether their weights are present in this installation."""
    try:
        config = load_preset(group, name)
    except KeyError:  # a plugin entry point: nothing to check
        return "  (plugin)"
    if "card" in config:
        from .priors.cards import card_folder, missing_files

        missing = missing_files(config["card"])
        folder = card_folder(config["card"])
        return (f"  (weights present: {folder})" if not missing else
                f"  (weights missing: `invprob fetch-prior {name}` or place them in {folder})")
    if config.get("_target_", "").endswith("load_shipped"):
        from .priors.shipped import WEIGHTS

        folder = WEIGHTS / config.get("name", name)
        present = (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
        return "  (weights present)" if present else f"  (weights missing: {folder})"
    return "  (analytic)" if "testbed" in config.get("_target_", "") else ""


if __name__ == "__main__":
    raise SystemExit(main())
