"""sphinx-gallery's ``reset_argv``: the command-line arguments each example is run with."""

from __future__ import annotations

import os


def reset_argv(gallery_conf, script_vars) -> list[str]:
    """``["--quick"]`` when ``INVPROB_DOCS_QUICK=1``, else no argument."""
    return ["--quick"] if os.environ.get("INVPROB_DOCS_QUICK", "0") == "1" else []
