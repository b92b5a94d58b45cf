"""What a run was built from: a watermark of the loaded data, stored in the run's params.

For events: each event table's row count and highest row id, the users table's row count, and
the loaded files (count, highest id). For a feature table: its id, checksum, users and load
time. `refresh` compares the current data's watermark with the current run's to decide whether
anything is new. Reading it costs a handful of COUNT/MAX queries.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from segmentation.db import connect
from segmentation.schema import EVENT_TABLES, feature_datasets, ingested_files, users


def _events_watermark(conn: Connection) -> Dict[str, Any]:
    marks: Dict[str, Any] = {}
    for name, table in EVENT_TABLES.items():
        count, top = conn.execute(select(func.count(), func.max(table.c.id))).one()
        marks[name] = [int(count), int(top or 0)]
    marks["users"] = [int(conn.execute(select(func.count()).select_from(users)).scalar_one())]
    count, top = conn.execute(select(func.count(), func.max(ingested_files.c.id))).one()
    marks["ingested_files"] = [int(count), int(top or 0)]
    return marks


def _dataset_watermark(conn: Connection, name: str) -> Dict[str, Any]:
    row = conn.execute(select(feature_datasets).where(feature_datasets.c.name == name)).first()
    if row is None:
        return {"dataset": None}
    return {
        "dataset": int(row.id),
        "sha256": row.sha256,
        "n_users": int(row.n_users),
        "loaded_at": str(row.loaded_at),
    }


def data_watermark(engine: Engine, source: str = "events") -> Dict[str, Any]:
    """The watermark of the data `source` ("events" or "features:NAME") would be built from."""
    with connect(engine) as conn:
        if source.startswith("features:"):
            return _dataset_watermark(conn, source.split(":", 1)[1])
        return _events_watermark(conn)


def run_watermark(params: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The watermark a run recorded (None for runs built before watermarks were kept)."""
    mark = params.get("watermark")
    return mark if isinstance(mark, dict) else None
