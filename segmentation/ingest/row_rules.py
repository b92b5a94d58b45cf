"""Rules across rows: no duplicate events in a file; one row per user (or --keep first|last)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Union

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from segmentation.errors import ConfigError
from segmentation.ingest.csv_blocks import Block
from segmentation.ingest.parse import Parsed
from segmentation.ingest.problems import Problems
from segmentation.schema import users

KEEP_CHOICES = ("first", "last")
DELETE_BATCH = 500


@dataclass
class RowsToWrite:
    """Rows to insert, and the user ids whose existing rows they replace."""

    frame: pd.DataFrame
    replace_ids: List[str] = field(default_factory=list)


class RecordHashes:
    """One 8-byte hash per row, in one array sized from the file (no 2x copy at the end)."""

    def __init__(self, file_bytes: int) -> None:
        self.file_bytes = file_bytes
        self._values = np.empty(0, dtype=np.int64)
        self._size = 0

    def add(self, block: Block) -> None:
        hashes = block.record_hashes()
        needed = self._size + len(hashes)
        if needed > len(self._values):
            # Rows expected in the whole file, from this block's bytes per row (+5%).
            expected = int(self.file_bytes * len(block) / max(len(block.data), 1) * 1.05)
            grown = np.empty(max(needed, expected, int(len(self._values) * 1.25)), np.int64)
            grown[: self._size] = self._values[: self._size]
            self._values = grown
        self._values[self._size : needed] = hashes
        self._size = needed

    def repeated(self) -> np.ndarray:
        """Hash values seen more than once (the array is sorted in place, then released)."""
        hashes = self._values[: self._size]
        hashes.sort()
        repeated = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
        self._values, self._size = np.empty(0, dtype=np.int64), 0
        return repeated


class EventRules:
    """Events: a row repeated in the same file is an error naming the lines of both copies."""

    dropped = 0

    def __init__(self, file_bytes: int) -> None:
        self._hashes = RecordHashes(file_bytes)
        self.rows = 0

    def start(self, conn: Connection) -> None:
        """Nothing to look up before loading events."""

    def accept(self, parsed: Parsed, problems: Problems) -> RowsToWrite:
        """Remember each record's hash; every row is written."""
        self._hashes.add(parsed.block)
        self.rows += len(parsed.frame)
        return RowsToWrite(parsed.frame)

    def before_write(self, conn: Connection, rows: RowsToWrite) -> None:
        """Events are only appended."""

    def finish(self, blocks: Iterable[Block], problems: Problems) -> None:
        """Name the lines of repeated rows (a second, slow pass runs only if hashes repeat)."""
        repeated = self._hashes.repeated()
        if not repeated.size:
            return
        first_line: Dict[bytes, int] = {}
        for block in blocks:
            for index in np.flatnonzero(np.isin(block.record_hashes(), repeated)):
                record, line = block.record_bytes(index), int(block.lines[index])
                first = first_line.setdefault(record, line)
                if first != line:
                    problems.add(
                        f"duplicate row: the same as line {first} (remove one of the copies)",
                        line=line,
                    )
                if problems.full:
                    return


class UserRules:
    """Users: one row per user id. Repeated ids need --keep; reloading a user replaces it."""

    def __init__(self, keep: Optional[str]) -> None:
        if keep is not None and keep not in KEEP_CHOICES:
            raise ConfigError(f"--keep must be 'first' or 'last', not '{keep}'")
        self.keep = keep
        self.first_line: Dict[str, int] = {}
        self.rows_read = 0
        self._replace_all = False

    @property
    def rows(self) -> int:
        """Distinct users loaded."""
        return len(self.first_line)

    @property
    def dropped(self) -> int:
        """Rows left out because another row of the same user won (--keep)."""
        return self.rows_read - self.rows

    def start(self, conn: Connection) -> None:
        """Users already in the table are replaced by this file's rows (upsert)."""
        self._replace_all = bool(conn.execute(select(func.count()).select_from(users)).scalar())

    def accept(self, parsed: Parsed, problems: Problems) -> RowsToWrite:
        """The rows to keep; repeated ids are problems unless --keep says which row wins."""
        frame, lines = parsed.frame, parsed.lines
        if frame.empty:
            return RowsToWrite(frame)
        replace_ids: List[str] = []
        ids = frame["user_id"]
        seen_before = ids.map(self.first_line)
        earlier = seen_before.notna().to_numpy()
        if self.keep is None:
            self._report_repeats(ids, lines, seen_before, problems)
            keep_rows = ~earlier & ~ids.duplicated(keep="first").to_numpy()
        elif self.keep == "first":
            keep_rows = ~earlier & ~ids.duplicated(keep="first").to_numpy()
        else:
            keep_rows = ~ids.duplicated(keep="last").to_numpy()
            replace_ids = ids[earlier & keep_rows].tolist()
        new = ~earlier & ~ids.duplicated(keep="first").to_numpy()
        self.first_line.update(zip(ids[new].tolist(), lines[new].tolist()))
        self.rows_read += len(frame)
        return RowsToWrite(frame[keep_rows].reset_index(drop=True), replace_ids)

    def _report_repeats(
        self, ids: pd.Series, lines: np.ndarray, seen_before: pd.Series, problems: Problems
    ) -> None:
        first_in_block = pd.Series(lines, index=ids.index).groupby(ids.to_numpy()).transform("min")
        first = seen_before.fillna(first_in_block).astype(np.int64).to_numpy()
        for index in np.flatnonzero(first != lines):
            problems.add(
                f"user id '{ids.iloc[index]}' is also on line {first[index]}; a user can have "
                "one row only (use --keep first or --keep last to pick one)",
                line=int(lines[index]),
            )
            if problems.full:
                return

    def before_write(self, conn: Connection, rows: RowsToWrite) -> None:
        """Delete the rows these users already have (from an earlier file or block)."""
        stale = rows.frame["user_id"].tolist() if self._replace_all else rows.replace_ids
        for start in range(0, len(stale), DELETE_BATCH):
            batch = stale[start : start + DELETE_BATCH]
            conn.execute(users.delete().where(users.c.user_id.in_(batch)))

    def finish(self, blocks: Iterable[Block], problems: Problems) -> None:
        """Repeated ids were handled block by block."""


RowRules = Union[EventRules, UserRules]


def rules_for(table_name: str, keep: Optional[str], file_bytes: int) -> RowRules:
    """The cross-row rules of `table_name` (`file_bytes` sizes the duplicate detection)."""
    if table_name == users.name:
        return UserRules(keep)
    if keep is not None:
        raise ConfigError("--keep only applies to the users table")
    return EventRules(file_bytes)
