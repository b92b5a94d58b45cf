"""Reading segmentation runs: the current one, earlier ones, and how users moved between them.

`RunQueries` holds the engine (created lazily, tables created if the database is new) and the
run queries; `segmentation.queries.SegmentQueries` adds the segment and user questions.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Dict, Iterator, List, Optional

from sqlalchemy import desc, func, select
from sqlalchemy.engine import Connection, Engine

from segmentation import db
from segmentation.aggregate import require_user_rows
from segmentation.errors import NoDataError
from segmentation.results import Migration, RunInfo
from segmentation.schema import ensure_schema, segmentation_runs, user_segments

NO_RUN_HELP = (
    "There is no segmentation run yet. Build one with `python -m segmentation demo` "
    "(demo data) or load your data and run `python -m segmentation build`."
)


def _run_info(row) -> RunInfo:
    return RunInfo(
        id=row.id,
        created_at=row.created_at,
        finished_at=row.finished_at,
        source=row.source,
        algorithm=row.algorithm,
        k=row.k,
        n_users=row.n_users or 0,
        data_as_of=row.data_as_of,
        status=row.status,
        params=row.params or {},
        metrics=row.metrics or {},
        segment_names=tuple((row.model or {}).get("names") or (row.params or {}).get("names", ())),
    )


class RunQueries:
    """Runs, read from the database named by `url` (or DATABASE_URL)."""

    def __init__(self, url: Optional[str] = None, engine: Optional[Engine] = None) -> None:
        self._url = url
        self._engine = engine
        self._schema_ready = False
        self._local = threading.local()

    @property
    def engine(self) -> Engine:
        """The engine, created on first use; the tables are created if the database is new."""
        if self._engine is None:
            self._engine = db.get_engine(self._url)
        if not self._schema_ready:
            ensure_schema(self._engine)
            self._schema_ready = True
        return self._engine

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        """One connection (and one consistent snapshot) for a whole answer: calls nested inside
        it, such as current_run(), reuse it instead of checking out another."""
        open_conn = getattr(self._local, "conn", None)
        if open_conn is not None:
            yield open_conn
            return
        with db.connect(self.engine) as conn:
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    # --- runs -----------------------------------------------------------------------------
    def _complete_runs(self, conn: Connection, before: Optional[int] = None, limit: int = 1):
        query = select(segmentation_runs).where(segmentation_runs.c.status == "complete")
        if before is not None:
            query = query.where(segmentation_runs.c.id < before)
        return conn.execute(query.order_by(desc(segmentation_runs.c.id)).limit(limit)).all()

    def current_run(self) -> RunInfo:
        """The newest complete run."""
        with self.connection() as conn:
            rows = self._complete_runs(conn)
        if not rows:
            raise NoDataError(NO_RUN_HELP)
        return _run_info(rows[0])

    def run(self, run_id: Optional[int] = None) -> RunInfo:
        """Run `run_id` if complete, else the current run."""
        if run_id is None:
            return self.current_run()
        with self.connection() as conn:
            row = conn.execute(
                select(segmentation_runs).where(
                    segmentation_runs.c.id == run_id, segmentation_runs.c.status == "complete"
                )
            ).first()
        if row is None:
            raise NoDataError(f"there is no complete run #{run_id}")
        return _run_info(row)

    def previous_run(self, run: RunInfo) -> Optional[RunInfo]:
        """The complete run before `run`, if any."""
        with self.connection() as conn:
            rows = self._complete_runs(conn, before=run.id)
        return _run_info(rows[0]) if rows else None

    def runs(self, limit: int = 20) -> List[RunInfo]:
        """Complete runs, newest first."""
        with self.connection() as conn:
            return [_run_info(row) for row in self._complete_runs(conn, limit=limit)]

    # --- change over time -------------------------------------------------------------------
    def migration(self, from_run: Optional[int] = None, to_run: Optional[int] = None) -> Migration:
        """Users per (segment before, segment after) between two runs (default: the last two)."""
        with self.connection() as conn:
            target = self.run(to_run)
            source = self.run(from_run) if from_run is not None else self.previous_run(target)
            if source is None:
                raise NoDataError(
                    f"{target.label} is the only run so far: there is nothing to compare it with "
                    "yet"
                )
            for run in (source, target):
                require_user_rows(run)
            before, after = user_segments.alias("before"), user_segments.alias("after")
            pairs = conn.execute(
                select(before.c.segment, after.c.segment, func.count())
                .select_from(
                    before.join(
                        after, (after.c.user_id == before.c.user_id) & (after.c.run_id == target.id)
                    )
                )
                .where(before.c.run_id == source.id)
                .group_by(before.c.segment, after.c.segment)
            ).all()
            new = self._unmatched(conn, after_run=target.id, before_run=source.id)
            gone = self._unmatched(conn, after_run=source.id, before_run=target.id)
        counts = {(a, b): int(n) for a, b, n in pairs}
        return Migration(source, target, counts, new, gone)

    def _unmatched(self, conn: Connection, after_run: int, before_run: int) -> Dict[str, int]:
        """Users of `after_run` per segment that are not in `before_run`."""
        mine, other = user_segments.alias("mine"), user_segments.alias("other")
        rows = conn.execute(
            select(mine.c.segment, func.count())
            .select_from(
                mine.outerjoin(
                    other, (other.c.user_id == mine.c.user_id) & (other.c.run_id == before_run)
                )
            )
            .where(mine.c.run_id == after_run, other.c.user_id.is_(None))
            .group_by(mine.c.segment)
        ).all()
        return {segment: int(n) for segment, n in rows}
