"""Progress bars (tqdm) for long steps; silent with --quiet, SI_QUIET=1 or when not a terminal."""

from __future__ import annotations

import os
from typing import Any

from tqdm import tqdm

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def progress(**kwargs: Any) -> tqdm:
    """A tqdm bar on stderr; `disable=None` lets tqdm hide it when stderr is not a terminal."""
    disabled = True if (_quiet or os.environ.get("SI_QUIET") == "1") else None
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(disable=disabled, **kwargs)
