"""Load raw event CSVs (and the optional users file) into their tables, all or nothing."""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Union

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from segmentation.bulk import bulk_insert
from segmentation.db import begin, connect, is_mysql
from segmentation.errors import InputError, SegmentationError
from segmentation.ingest.columns import ColumnPlan, loadable_table, plan_columns
from segmentation.ingest.csv_blocks import DEFAULT_BLOCK_BYTES, CsvBlocks
from segmentation.ingest.parse import BlockConverter
from segmentation.ingest.problems import Problems
from segmentation.ingest.row_rules import RowRules, RowsToWrite, rules_for
from segmentation.ingest.values import TimestampFormat
from segmentation.progress import progress
from segmentation.schema import ingested_files

HASH_CHUNK_BYTES = 2**20
MYSQL_LOCK_WAIT_TIMEOUT = 1205


@dataclass
class IngestResult:
    """What one `ingest_csv` call did."""

    table: str
    file_id: int
    rows: int
    skipped_as_duplicate_file: bool
    ignored_columns: List[str]
    seconds: float
    dropped_rows: int = 0  # users: rows left out by --keep
    loaded_at: Optional[datetime] = None
    mapping: Dict[str, str] = field(default_factory=dict)

    def summary(self, path: Union[str, Path]) -> str:
        """A short report for people."""
        name = Path(path).name
        if self.skipped_as_duplicate_file:
            return (
                f"{name}: this content was already loaded into {self.table} as file "
                f"#{self.file_id} on {self.loaded_at:%Y-%m-%d %H:%M} UTC ({self.rows:,} rows); "
                "nothing to do"
            )
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"{name}: loaded {self.rows:,} rows into {self.table} (file #{self.file_id}) "
            f"in {self.seconds:.1f} s ({rate:,.0f} rows/s)"
        ]
        if self.dropped_rows:
            lines.append(f"  {self.dropped_rows:,} rows with a repeated user id left out (--keep)")
        if self.ignored_columns:
            lines.append(f"  ignored columns (not mapped): {', '.join(self.ignored_columns)}")
        return "\n".join(lines)


def ingest_csv(
    engine: Engine,
    path: Union[str, Path],
    table: str,
    mapping: Optional[Mapping[str, str]] = None,
    timestamp_format: Optional[str] = None,
    keep: Optional[str] = None,
    *,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> IngestResult:
    """Load CSV `path` into `table` in one transaction; InputError(s) leave the database as it was.

    `mapping` is {table column: file column}; `timestamp_format` is 'iso' (default), 'epoch_s',
    'epoch_ms' or a strftime pattern; `keep` ('first' or 'last') picks the row of a user id that
    repeats in a users file. Content already loaded into `table` is skipped (by SHA-256).
    """
    started = time.perf_counter()
    target = loadable_table(table)
    timestamps = TimestampFormat(timestamp_format)
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=str(path))
    rules = rules_for(target.name, keep, path.stat().st_size)
    blocks = CsvBlocks(path, block_bytes)
    plan = plan_columns(target, blocks.header, mapping, path, blocks.header_line)
    before = os.stat(path)
    digest = file_sha256(path)
    try:
        with begin(engine) as conn:
            previous = _previous_load(conn, target, digest)
            if previous is not None:
                return _skipped(previous, plan, started)
            file_id = _record_file(conn, target, path, digest, plan.sources)
            rules.start(conn)
            _load_rows(conn, blocks, plan, timestamps, rules, file_id)
            _check_unchanged(path, before)
            conn.execute(
                ingested_files.update()
                .where(ingested_files.c.id == file_id)
                .values(rows=rules.rows)
            )
    except IntegrityError:
        # Someone loaded the same content at the same time and committed first.
        with connect(engine) as conn:
            previous = _previous_load(conn, target, digest)
        if previous is None:
            raise
        return _skipped(previous, plan, started)
    return IngestResult(
        table=target.name,
        file_id=file_id,
        rows=rules.rows,
        skipped_as_duplicate_file=False,
        ignored_columns=plan.ignored,
        seconds=time.perf_counter() - started,
        dropped_rows=rules.dropped,
        mapping=plan.sources,
    )


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _previous_load(conn: Connection, table: Table, digest: str):
    query = select(ingested_files).where(
        ingested_files.c.table_name == table.name, ingested_files.c.sha256 == digest
    )
    return conn.execute(query).first()


def _skipped(previous, plan: ColumnPlan, started: float) -> IngestResult:
    return IngestResult(
        table=previous.table_name,
        file_id=previous.id,
        rows=previous.rows,
        skipped_as_duplicate_file=True,
        ignored_columns=plan.ignored,
        seconds=time.perf_counter() - started,
        loaded_at=previous.loaded_at,
        mapping=plan.sources,
    )


def _record_file(
    conn: Connection, table: Table, path: Path, digest: str, mapping: Dict[str, str]
) -> int:
    """Claim (table, content) for this load; a concurrent load of the same content waits here."""
    name = str(path.resolve())
    if len(name) > ingested_files.c.file_name.type.length:
        name = path.name
    statement = ingested_files.insert().values(
        table_name=table.name,
        file_name=name,
        sha256=digest,
        rows=0,
        mapping=mapping,
        loaded_at=datetime.utcnow().replace(microsecond=0),
    )
    try:
        result = conn.execute(statement)
    except OperationalError as exc:
        if getattr(exc.orig, "args", (None,))[0] != MYSQL_LOCK_WAIT_TIMEOUT:
            raise
        raise SegmentationError(
            f"{path}: the same content is being loaded into {table.name} by another process; "
            "try again when it has finished"
        ) from None
    return int(result.inserted_primary_key[0])


def _check_unchanged(path: Path, before: os.stat_result) -> None:
    after = os.stat(path)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise InputError(
            "the file changed while it was being loaded; nothing was loaded", str(path)
        )


def _load_rows(
    conn: Connection,
    blocks: CsvBlocks,
    plan: ColumnPlan,
    timestamps: TimestampFormat,
    rules: RowRules,
    file_id: int,
) -> None:
    """Parse, check and insert block by block; raise every problem found (nothing is kept)."""
    converter = BlockConverter(plan, blocks.header, timestamps, blocks.path)
    problems = Problems(blocks.path)
    records = 0
    bar = progress(total=os.path.getsize(blocks.path), desc=f"loading {plan.table.name}", unit="B")
    with bar, BlockWriter(conn, plan.table, rules.before_write) as writer:
        try:
            for block in blocks:
                records += len(block)
                parsed = converter.convert(block, problems)
                rows = rules.accept(parsed, problems)
                if not problems:
                    rows.frame["file_id"] = file_id
                    writer.write(rows)
                if problems.full:
                    break
                bar.update(len(block.data))
        except InputError as error:  # the file cannot be split into records past this point
            problems.add_error(error)
        else:
            if not problems.full:
                rules.finish(blocks, problems)
    problems.raise_if_any()
    if records == 0:
        raise InputError(
            "the file has a header but no data rows", str(blocks.path), blocks.header_line
        )


class BlockWriter:
    """Inserts blocks one at a time; on MariaDB in a worker thread, overlapping the parse of the
    next block with the load of this one (same connection, same transaction)."""

    def __init__(
        self,
        conn: Connection,
        table: Table,
        before_write: Callable[[Connection, RowsToWrite], None],
    ) -> None:
        self.conn = conn
        self.table = table
        self.before_write = before_write
        self._pool = ThreadPoolExecutor(max_workers=1) if is_mysql(conn) else None
        self._pending: Optional[Future] = None

    def write(self, rows: RowsToWrite) -> None:
        self.wait()
        if self._pool is None:
            self._insert(rows)
        else:
            self._pending = self._pool.submit(self._insert, rows)

    def _insert(self, rows: RowsToWrite) -> None:
        self.before_write(self.conn, rows)
        bulk_insert(self.conn, self.table, rows.frame)

    def wait(self) -> None:
        """Block until the insert in flight is done (re-raising its error)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> "BlockWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        try:
            if exc_type is None:
                self.wait()
            elif self._pending is not None:
                self._pending.exception()  # let it finish; the first error wins
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
