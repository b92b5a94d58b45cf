"""One refresh (or build) at a time per database, even from several machines.

MySQL/MariaDB: a named server lock (`GET_LOCK`), held by a connection of its own for as long
as the work runs; the server frees it when that connection ends, so a crashed process never
leaves it behind. SQLite: an exclusive file lock (`flock`) beside the database file, freed by
the operating system when the process ends. A second process waits up to `wait` seconds
(0: not at all) and then raises `Busy` with a clear message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Iterator

from sqlalchemy.engine import Engine

from segmentation.config import runtime_dir
from segmentation.db import describe, is_mysql, translate_errors
from segmentation.errors import SegmentationError

EXIT_BUSY = 5
LOCK_NAME = "segment_insights_refresh"
POLL_SECONDS = 0.2
MAX_WAIT_STATEMENT = 30.0  # seconds one GET_LOCK may block


class Busy(SegmentationError):
    """Another refresh or build holds the lock on this database."""

    exit_code = EXIT_BUSY


def _busy(engine: Engine, wait: float) -> Busy:
    waited = f" after waiting {wait:g} s" if wait > 0 else ""
    return Busy(
        f"another refresh or build is running on {describe(engine.url)}{waited}; nothing was "
        "done. Try again later, or pass --wait SECONDS to wait for it"
    )


@contextlib.contextmanager
def _mysql_lock(engine: Engine, wait: float) -> Iterator[None]:
    with translate_errors(engine):
        conn = engine.connect()
    try:
        name = conn.exec_driver_sql("SELECT DATABASE()").scalar() or ""
        key = f"{LOCK_NAME}:{name}"[:64]
        deadline = time.monotonic() + max(0.0, wait)
        while True:  # in short waits, so no single statement outlasts the read timeout
            chunk = max(0.0, min(MAX_WAIT_STATEMENT, deadline - time.monotonic()))
            got = conn.exec_driver_sql("SELECT GET_LOCK(%s, %s)", (key, chunk)).scalar()
            if got == 1:
                break
            if time.monotonic() >= deadline:
                raise _busy(engine, wait)
        try:
            yield
        finally:
            conn.exec_driver_sql("SELECT RELEASE_LOCK(%s)", (key,))
    finally:
        conn.close()


def _lock_file(engine: Engine) -> Path:
    database = engine.url.database
    if database and database != ":memory:":
        return Path(database + ".refresh.lock")
    return runtime_dir() / "refresh.lock"


@contextlib.contextmanager
def _file_lock(engine: Engine, wait: float) -> Iterator[None]:
    path = _lock_file(engine)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _busy(engine, wait) from None
                time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


@contextlib.contextmanager
def refresh_lock(engine: Engine, wait: float = 0.0) -> Iterator[None]:
    """Hold this database's refresh lock for the block; `Busy` if it stays taken `wait` s."""
    manager = _mysql_lock if is_mysql(engine) else _file_lock
    with manager(engine, wait):
        yield
