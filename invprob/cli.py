"""Command line entry point (placeholder until the CLI issue lands: ``invprob demo``)."""

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
        from .training import main as train_main

        return train_main(argv[1:])
    if argv[:1] == ["list"]:
        from .registry import available, load_preset

        for group, names in available().items():
            print(f"{group}:")
            for name in names:
                print(f"  {name}{_weights_status(group, name, load_preset) if group == 'priors' else ''}")
        return 0
    print("usage: invprob {solve,demo,list,train}", file=sys.stderr)
    return 2



def _weights_status(group: str, name: str, load_preset) -> str:
    """For shipped priors: whether their weights are present in this installation."""
    try:
        config = load_preset(group, name)
    except KeyError:  # a plugin entry point: nothing to check
        return "  (plugin)"
    if config.get("_target_", "").endswith("load_shipped"):
        from .priors.shipped import WEIGHTS

        folder = WEIGHTS / config.get("name", name)
        present = (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
        return "  (weights present)" if present else f"  (weights missing: {folder})"
    return "  (analytic)" if "testbed" in config.get("_target_", "") else ""


if __name__ == "__main__":
    raise SystemExit(main())
