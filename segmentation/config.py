"""Where things live: the database URL, the project folder and runtime folders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Pattern

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_NAME = "segment_insights.db"


def runtime_dir() -> Path:
    """Folder for runtime state (embedded database, charts); ignored by git."""
    path = Path(os.environ.get("SI_RUNTIME_DIR", PROJECT_DIR / "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_database_url() -> str:
    """The embedded SQLite database inside the project folder."""
    return f"sqlite:///{runtime_dir() / DEFAULT_SQLITE_NAME}"


def database_url() -> str:
    """`DATABASE_URL` from the environment, or the embedded SQLite file."""
    return os.environ.get("DATABASE_URL") or default_database_url()


def charts_dir() -> Path:
    """Folder where chart PNGs are written for the bot to serve."""
    path = Path(os.environ.get("SI_CHARTS_DIR", runtime_dir() / "charts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def aggregate_tmp_table_bytes() -> int:
    """Session limit for MySQL's in-memory temporary tables while features are aggregated
    (`SI_AGGREGATE_TMP_TABLE_MB`, default 1024; 0 keeps the server's setting). A GROUP BY over
    a million users outgrows the 16 MB default and spills to disk, several times slower."""
    return int(float(os.environ.get("SI_AGGREGATE_TMP_TABLE_MB", "1024")) * 2**20)


# Bounded waits on MySQL/MariaDB, in seconds. The command line keeps long read timeouts (a
# build's GROUP BY can run for minutes); the servers set short ones (bot/processes.py), so a
# database that hangs gives an answer within seconds instead of freezing a conversation.
DB_TIMEOUT_DEFAULTS = {
    "SI_DB_CONNECT_TIMEOUT": 5.0,
    "SI_DB_READ_TIMEOUT": 3600.0,
    "SI_DB_WRITE_TIMEOUT": 3600.0,
    "SI_DB_STATEMENT_TIMEOUT": 0.0,  # 0: no server-side limit
}


def db_timeouts() -> dict:
    """Connect, read, write and statement time limits (s) from the environment; a value of 0
    or less means "no limit" (the connect timeout is always at least 1 s)."""
    values = {}
    for name, default in DB_TIMEOUT_DEFAULTS.items():
        raw = os.environ.get(name, "").strip()
        values[name] = float(raw) if raw else default
    return {
        "connect": max(1.0, values["SI_DB_CONNECT_TIMEOUT"]),
        "read": values["SI_DB_READ_TIMEOUT"],
        "write": values["SI_DB_WRITE_TIMEOUT"],
        "statement": values["SI_DB_STATEMENT_TIMEOUT"],
    }


def file_in(folder: Path, name: str, pattern: Pattern[str]) -> Optional[Path]:
    """The file called `name` directly in `folder` when `name` matches `pattern`, else None
    (never a path outside the folder, never a symlink out of it)."""
    if not pattern.match(name):
        return None
    folder = folder.resolve()
    path = (folder / name).resolve()
    return path if path.parent == folder and path.is_file() else None
