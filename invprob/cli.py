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
        from .registry import available

        for group, names in available().items():
            print(f"{group}: {', '.join(names)}")
        return 0
    print("usage: invprob {solve,demo,list,train}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
