"""Shared by the benchmarks: scratch databases, cached data, small tables of figures."""

from __future__ import annotations

import contextlib
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Iterator, List, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text

from segmentation import db
from segmentation.bulk import bulk_insert
from segmentation.schema import article_views, clickstream, search_queries

SERVER_URL = os.environ.get("BENCH_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306")


def cache_dir() -> Path:
    """Generated benchmark data, kept between runs (outside the clone)."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    path = base / "segment-insights" / "bench-data"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A new MariaDB database for one measurement, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    server = create_engine(SERVER_URL + "/", future=True)
    with server.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield f"{SERVER_URL}/{name}"
    finally:
        db.dispose_engines()
        with server.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


def uniform_events(engine, users: int, per_source: int, seed: int = 0) -> None:
    """`per_source` events per user in each event table, like the seed project's generators."""
    rng = np.random.RandomState(seed)
    ids = np.repeat([str(i) for i in range(users)], per_source)
    n = len(ids)
    stamps = pd.Timestamp(datetime(2026, 11, 1)) - pd.to_timedelta(
        rng.randint(0, 30 * 86400, n), "s"
    )
    tables = {
        clickstream: {
            "url": [f"/page{i}" for i in rng.randint(0, 100, n)],
            "time_spent": rng.randint(5, 300, n).astype(float),
        },
        search_queries: {"query": [f"query {i}" for i in rng.randint(0, 500, n)]},
        article_views: {
            "article_id": rng.randint(1, 100, n).astype(str),
            "time_spent": rng.randint(30, 300, n).astype(float),
        },
    }
    with db.begin(engine) as conn:
        for table, columns in tables.items():
            frame = pd.DataFrame({"user_id": ids, "timestamp": stamps, **columns, "file_id": 1})
            bulk_insert(conn, table, frame)


def print_table(headers: Sequence[str], rows: List[Sequence[str]]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    for index, row in enumerate([headers, *rows]):
        print("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths)))
        if index == 0:
            print("  ".join("-" * width for width in widths))
