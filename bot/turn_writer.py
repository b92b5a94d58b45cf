"""Writing each turn's events to the `events` table, in order, surviving database outages.

`TurnWriter` takes the new event rows of each turn and writes them on one thread of its own
(so the event loop never waits on the database), everything pending in one transaction, in
arrival order. A turn the database does not take (down, hung, too slow) stays pending: in
memory, bounded by `max_bytes`, and in a spool file, and it is written as soon as the
database answers again (retried every `retry_seconds`, and by every later turn). A turn that
does not fit in the bound is refused, so the caller can say so.

`Spool` keeps the pending turns on disk (JSON lines, one file per server process, locked
while the process lives), so a restart or a crash of the Rasa server loses nothing: the next
server on the same database adopts the files of dead processes. A turn that may already have
been written (its commit's answer was lost, or a dead process wrote it before it could update
its spool) is checked against the table before it is written again.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from sqlalchemy import Table, select
from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)

ROWS_PER_INSERT = 500


@dataclass
class Turn:
    """The new event rows of one conversation turn."""

    seq: int
    sender_id: str
    rows: List[Dict[str, Any]]
    size: int
    attempts: int = 0
    spooled: bool = False

    def record(self) -> Dict[str, Any]:
        return {"sender_id": self.sender_id, "rows": self.rows}


def database_key(url: str) -> str:
    """A short stable name for a database (no password), for spool file names."""
    from sqlalchemy.engine import make_url

    shown = make_url(url).render_as_string(hide_password=True)
    return hashlib.sha256(shown.encode()).hexdigest()[:12]


class Spool:
    """Pending turns on disk: `<folder>/<database key>-<pid>.jsonl`, locked by its process
    while it holds turns, removed when it holds none."""

    def __init__(self, folder: Path, key: str) -> None:
        self.folder = folder
        self.key = key
        self.path = folder / f"{key}-{os.getpid()}.jsonl"
        self._file = None

    def adopt(self) -> List[Dict[str, Any]]:
        """The turns in spool files of dead processes on the same database, moved into this
        process's spool."""
        records: List[Dict[str, Any]] = []
        for path in sorted(self.folder.glob(f"{self.key}-*.jsonl")):
            if path == self.path:
                continue
            with open(path, "r", encoding="utf-8") as other:
                try:
                    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # its process is alive
                if os.fstat(other.fileno()).st_nlink == 0:
                    continue  # adopted by another process meanwhile
                found = [json.loads(line) for line in other if line.strip()]
                if found:
                    records += found
                    self.rewrite_with(records)
                path.unlink()
        return records

    def rewrite_with(self, records: Iterable[Dict[str, Any]]) -> None:
        """Make the file hold exactly `records` (flushed to disk); no records, no file."""
        lines = [json.dumps(record) + "\n" for record in records]
        if not lines:
            if self._file is not None:
                self._file.truncate(0)
            self.close()
            return
        if self._file is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a+", encoding="utf-8")
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._file.seek(0)
        self._file.truncate()
        self._file.writelines(lines)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Remove the (empty) file; a spool holding turns is kept for the next server."""
        if self._file is None:
            return
        empty = self._file.seek(0, os.SEEK_END) == 0
        if empty:
            self.path.unlink(missing_ok=True)
        self._file.close()
        self._file = None


class TurnWriter:
    """Writes turns in arrival order on its own thread; keeps what the database did not take."""

    def __init__(
        self,
        engine: Engine,
        table: Table,
        spool: Optional[Spool] = None,
        max_bytes: int = 64 * 2**20,
        retry_seconds: float = 5.0,
        prepare=None,
    ) -> None:
        self.engine = engine
        self.table = table
        self.spool = spool
        self.max_bytes = max_bytes
        self.retry_seconds = retry_seconds
        self._prepare = prepare  # called (once, on the writer thread) before the first write
        self._prepared = prepare is None
        self._pending: Dict[int, Turn] = {}  # insertion order = arrival order
        self._bytes = 0
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._spool_lock = threading.Lock()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="si-turn-writer")
        self._queued: Optional[Future] = None  # a flush not started yet: later turns join it
        self._stop = threading.Event()
        self.last_error: Optional[str] = None
        self.written_turns = 0
        if spool is not None:
            for record in spool.adopt():
                self._add(record["sender_id"], record["rows"], attempts=1, spooled=True)
            if self._pending:
                logger.warning("Adopted %d unsaved turns from a previous server", len(self))
        threading.Thread(target=self._retry_loop, name="si-turn-retry", daemon=True).start()

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def _add(self, sender_id: str, rows: List[Dict], attempts: int = 0, spooled: bool = False):
        size = sum(len(row.get("data") or "") + 200 for row in rows)
        with self._lock:
            if self._bytes + size > self.max_bytes:
                return None
            turn = Turn(next(self._seq), sender_id, rows, size, attempts, spooled)
            self._pending[turn.seq] = turn
            self._bytes += size
            return turn

    def add(self, sender_id: str, rows: List[Dict[str, Any]]) -> Optional[Turn]:
        """Queue a turn's rows; None when the pending turns already fill `max_bytes`."""
        return self._add(sender_id, rows)

    def pending(self, turn: Turn) -> bool:
        """True while `turn` is not written."""
        with self._lock:
            return turn.seq in self._pending

    def pending_rows(self, sender_id: str) -> List[Dict[str, Any]]:
        """Rows of `sender_id`'s turns not written yet, in order."""
        with self._lock:
            turns = [t for t in self._pending.values() if t.sender_id == sender_id]
        return [row for turn in turns for row in turn.rows]

    def mark_prepared(self) -> None:
        """The table exists: no need to prepare it before the first write."""
        self._prepared = True

    def flush_soon(self) -> "Future[bool]":
        """Write everything pending (on the writer thread); the future says whether all is."""
        with self._lock:
            if self._queued is None:
                self._queued = self.executor.submit(self.flush)
            return self._queued

    def flush(self) -> bool:
        """Write every pending turn in one transaction; True when none is left pending."""
        with self._lock:
            self._queued = None
            batch = list(self._pending.values())
        if not batch:
            return True
        try:
            with self.engine.begin() as conn:
                if not self._prepared:
                    self._prepare(conn)
                    self._prepared = True
                rows = [row for turn in batch if not self._written(conn, turn) for row in turn.rows]
                for start in range(0, len(rows), ROWS_PER_INSERT):
                    conn.execute(self.table.insert(), rows[start : start + ROWS_PER_INSERT])
        except Exception as exc:  # noqa: BLE001 - any failure: keep the turns, retry later
            for turn in batch:
                turn.attempts += 1
            if self.last_error is None:
                logger.error("Could not write %d turn(s) to the events table: %s", len(batch), exc)
            self.last_error = str(exc).splitlines()[0]
            return False
        with self._lock:
            for turn in batch:
                self._pending.pop(turn.seq, None)
                self._bytes -= turn.size
            spooled_gone = any(turn.spooled for turn in batch)
            done = not self._pending
        self.written_turns += len(batch)
        if self.last_error is not None:
            logger.warning("The events table takes writes again: wrote %d held turn(s)", len(batch))
            self.last_error = None
        if spooled_gone:
            self._sync_spool()
        return done

    def _written(self, conn, turn: Turn) -> bool:
        """For a turn tried before: is its first row in the table already?"""
        if not turn.attempts or not turn.rows:
            return False
        first = turn.rows[0]
        found = conn.execute(
            select(self.table.c.id)
            .where(self.table.c.sender_id == turn.sender_id)
            .where(self.table.c.type_name == first["type_name"])
            .where(self.table.c.data == first["data"])
            .limit(1)
        ).first()
        return found is not None

    def keep_on_disk(self) -> None:
        """Write the pending turns that are not in the spool yet to it."""
        with self._lock:
            if all(turn.spooled for turn in self._pending.values()):
                return
            for turn in self._pending.values():
                turn.spooled = True
        self._sync_spool()

    def _sync_spool(self) -> None:
        """Make the spool file hold exactly the pending turns marked as spooled."""
        if self.spool is None:
            return
        with self._spool_lock:
            with self._lock:
                records = [t.record() for t in self._pending.values() if t.spooled]
            self.spool.rewrite_with(records)

    def _retry_loop(self) -> None:
        while not self._stop.wait(self.retry_seconds):
            if len(self):
                try:
                    self.flush_soon().result()
                except RuntimeError:  # the executor was shut down
                    return

    def close(self, timeout: float = 5.0) -> None:
        """Stop retrying; a last write attempt, and what is left stays in the spool."""
        self._stop.set()
        if len(self):
            future = self.flush_soon()
            deadline = time.monotonic() + timeout
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.05)
        self.keep_on_disk()
        self.executor.shutdown(wait=False)
        if self.spool is not None and not len(self):
            self.spool.close()
