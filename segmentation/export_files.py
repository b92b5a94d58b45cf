"""CSV exports made in chat: files with unguessable names that expire.

The action writes an export here (`new_export`); the Slack channel uploads it into the thread,
the web chat serves it behind its name (`saved_export`), the terminal shows its path. A name is
a random token, so knowing one export's link tells nothing about another's; files older than
SI_EXPORT_TTL_SECONDS (default one hour) are neither served nor kept.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path
from typing import Optional

from segmentation.config import file_in, runtime_dir

EXPORT_NAME = re.compile(r"^[A-Za-z0-9_-]{32}\.csv$")


def exports_dir() -> Path:
    """Folder where chat exports are written (SI_EXPORTS_DIR, default var/exports)."""
    path = Path(os.environ.get("SI_EXPORTS_DIR", runtime_dir() / "exports"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def ttl_seconds() -> float:
    """How long an export stays downloadable."""
    return float(os.environ.get("SI_EXPORT_TTL_SECONDS", "3600"))


def new_export(folder: Optional[Path] = None) -> Path:
    """A fresh path with an unguessable name (24 random bytes), after expired files are
    removed."""
    folder = folder or exports_dir()
    purge_expired(folder)
    return folder / f"{secrets.token_urlsafe(24)}.csv"


def saved_export(name: str, folder: Optional[Path] = None) -> Optional[Path]:
    """The export called `name` if it exists and has not expired, else None (never a file
    outside the folder, never another kind of file)."""
    path = file_in(folder or exports_dir(), name, EXPORT_NAME)
    if path is None:
        return None
    if time.time() - path.stat().st_mtime > ttl_seconds():
        path.unlink(missing_ok=True)
        return None
    return path


def purge_expired(folder: Optional[Path] = None) -> int:
    """Delete expired exports; the number deleted."""
    folder = folder or exports_dir()
    limit = time.time() - ttl_seconds()
    removed = 0
    for path in folder.glob("*.csv"):
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
