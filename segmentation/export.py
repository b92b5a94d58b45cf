"""Export a segment's members as CSV, streamed: a million rows in bounded memory.

`export_csv(source, query, out)` writes the users a `Query` asks about (its segments, filters
and run; the same model the chat answers) with their segment, engagement score, every feature
of the run and their attributes. Rows are read through a server-side cursor (MySQL) or a lazy
cursor (SQLite), `CHUNK_ROWS` at a time, and written as they arrive. The chat and the CLI
(`python -m segmentation export`) share it.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import IO, List, Union

from sqlalchemy import desc, select
from sqlalchemy.engine import Engine

from segmentation import aggregate
from segmentation.queries import SegmentQueries
from segmentation.query import Query
from segmentation.results import RunInfo
from segmentation.schema import user_segments

CHUNK_ROWS = 5_000


def export_columns(run: RunInfo) -> List[str]:
    """The CSV header: user_id, segment, score, the run's features, its users' attributes."""
    return ["user_id", "segment", "score", *run.features, *run.params.get("attributes", [])]


def _queries(source: Union[SegmentQueries, Engine]) -> SegmentQueries:
    return source if isinstance(source, SegmentQueries) else SegmentQueries(engine=source)


def export_csv(
    source: Union[SegmentQueries, Engine],
    query: Query,
    out: IO[str],
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Write the users `query` asks about (query.segments: the run's own names, none = every
    segment; query.filters; query.run) as CSV to `out`, most engaged first, with a header;
    returns the number of rows written. Raises UnknownSegment / CannotApply (NoDataError)
    for a segment, attribute or value the run doesn't have, and NoDataError for a run whose
    per-user rows retention removed."""
    queries = _queries(source)
    writer = csv.writer(out, lineterminator="\n")
    with queries.connection() as conn:
        run = queries.resolve_run(query.run)
        queries.check(run, query)
        if query.filters:
            query = queries.stored_values(run, query)
        aggregate.require_user_rows(run)
        header = export_columns(run)
        features = run.features
        attributes = header[3 + len(features) :]
        u = user_segments.c
        statement = (
            select(u.user_id, u.segment, u.score, u.features, *(u[a] for a in attributes))
            .where(*aggregate.members_where(run, query.filters, query.segments))
            .order_by(desc(u.score), u.user_id)
        )
        writer.writerow(header)
        written = 0
        result = conn.execution_options(stream_results=True).execute(statement)
        for rows in result.partitions(chunk_rows):
            # csv writes None as "" and floats as their shortest exact repr
            writer.writerows(
                [row[0], row[1], row[2], *[row[3].get(f) for f in features], *row[4:]]
                for row in rows
            )
            written += len(rows)
    return written


def export_to_path(source: Union[SegmentQueries, Engine], query: Query, path: Path) -> int:
    """`export_csv` into the file `path`, which appears only once complete; returns rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            rows = export_csv(source, query, out)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return rows
