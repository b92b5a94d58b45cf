"""Shared helpers for the ingest tests (this module holds no tests of its own)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

from sqlalchemy import func, select

from segmentation.cli import main
from segmentation.db import connect
from segmentation.schema import (
    article_views,
    clickstream,
    feature_datasets,
    feature_rows,
    ingested_files,
    search_queries,
    users,
)

LOADED_TABLES = (
    clickstream,
    search_queries,
    article_views,
    users,
    ingested_files,
    feature_datasets,
    feature_rows,
)

CLICKS_HEADER = "user_id,timestamp,url,referrer,device,session_id,time_spent"
CLICKS_ROWS = [
    "u1,2026-10-01T10:00:00Z,/home,google.com,iOS,s1,12.5",
    "u1,2026-10-01 10:00:30,/news/1,internal,iOS,s1,30",
    'u2,2026-10-02T08:15:00+02:00,"/search?q=a,b",,Android,s2,',
    "u3,2026-10-03 23:59:59.900,/home,direct,Web,s3,0",
]


def write_csv(
    folder: Path, name: str, lines: List[str], *, bom: bool = False, crlf: bool = False
) -> Path:
    """Write `lines` as a CSV file (optionally with a UTF-8 BOM and CRLF line endings)."""
    ending = "\r\n" if crlf else "\n"
    data = ending.join(lines) + ending
    path = folder / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    return path


def clicks_file(folder: Path, rows: List[str], name: str = "clicks.csv", **options) -> Path:
    """A clickstream CSV with the standard header and `rows`."""
    return write_csv(folder, name, [CLICKS_HEADER, *rows], **options)


def table_counts(engine) -> Dict[str, int]:
    """Row count of every table a load writes to."""
    with connect(engine) as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar()
            for table in LOADED_TABLES
        }


def assert_nothing_loaded(engine) -> None:
    """Every table a load writes to is still empty."""
    assert table_counts(engine) == {table.name: 0 for table in LOADED_TABLES}


def run_cli(capsys, db_url: str, *argv: str) -> Tuple[int, str, str]:
    """`python -m segmentation --database-url db_url -q ARGV...`: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(["--database-url", db_url, "-q", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
