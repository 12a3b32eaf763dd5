"""Where the shared real data lives: ``$INVPROB_DATA`` or ``../shared/data`` beside the repository."""

from __future__ import annotations

import os
from pathlib import Path


def root() -> Path:
    env = os.environ.get("INVPROB_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def path(relative: str) -> Path:
    p = root() / relative
    if not p.exists():
        raise FileNotFoundError(f"data file not found: {p}; set INVPROB_DATA to the folder holding "
                                f"the shared data (mnist/, set12/, ...).")
    return p
