"""Loading event and users CSVs: values, mappings, timestamp formats, reloads (both backends)."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from segmentation.db import connect
from segmentation.ingest import ingest_csv
from segmentation.schema import article_views, clickstream, ingested_files, search_queries, users
from tests.test_ingest_support import (
    CLICKS_ROWS,
    clicks_file,
    run_cli,
    table_counts,
    write_csv,
)

CLICK_COLUMNS = ("user_id", "timestamp", "url", "referrer", "device", "session_id", "time_spent")


def stored(engine, table, columns=None, file_id=None):
    """Rows of `table` in insertion order, as tuples of `columns`."""
    columns = columns or [c.name for c in table.columns if c.name not in ("id", "file_id")]
    query = select(*[table.c[name] for name in columns])
    if file_id is not None:
        query = query.where(table.c.file_id == file_id)
    if "id" in table.c:
        query = query.order_by(table.c.id)
    with connect(engine) as conn:
        return [tuple(row) for row in conn.execute(query)]


def test_clickstream_values_are_stored_as_given(engine, tmp_path):
    result = ingest_csv(engine, clicks_file(tmp_path, CLICKS_ROWS), "clickstream")
    assert (result.table, result.rows, result.skipped_as_duplicate_file) == (
        "clickstream",
        4,
        False,
    )
    assert result.ignored_columns == []
    assert stored(engine, clickstream, CLICK_COLUMNS) == [
        ("u1", datetime(2026, 10, 1, 10, 0, 0), "/home", "google.com", "iOS", "s1", 12.5),
        ("u1", datetime(2026, 10, 1, 10, 0, 30), "/news/1", "internal", "iOS", "s1", 30.0),
        # +02:00 is converted to UTC; empty optional fields are NULL; quoted commas survive.
        ("u2", datetime(2026, 10, 2, 6, 15, 0), "/search?q=a,b", None, "Android", "s2", None),
        # Fractions of a second are dropped.
        ("u3", datetime(2026, 10, 3, 23, 59, 59), "/home", "direct", "Web", "s3", 0.0),
    ]
    with connect(engine) as conn:
        files = conn.execute(select(ingested_files)).all()
    assert [(f.table_name, f.rows, len(f.sha256)) for f in files] == [("clickstream", 4, 64)]
    assert {row[0] for row in stored(engine, clickstream, ["file_id"])} == {files[0].id}


def test_bom_and_crlf_file_loads_identically_to_the_clean_file(engine, tmp_path):
    clean = ingest_csv(engine, clicks_file(tmp_path, CLICKS_ROWS), "clickstream")
    windows = clicks_file(tmp_path, CLICKS_ROWS, name="windows.csv", bom=True, crlf=True)
    assert (
        windows.read_bytes().startswith(b"\xef\xbb\xbfuser_id,") and b"\r\n" in windows.read_bytes()
    )
    other = ingest_csv(engine, windows, "clickstream")
    assert other.rows == 4 and other.file_id != clean.file_id
    assert stored(engine, clickstream, CLICK_COLUMNS, other.file_id) == stored(
        engine, clickstream, CLICK_COLUMNS, clean.file_id
    )


def test_loading_the_same_content_twice_adds_nothing(engine, tmp_path, capsys, db_url):
    path = clicks_file(tmp_path, CLICKS_ROWS)
    first = ingest_csv(engine, path, "clickstream")
    copy = tmp_path / "copy-of-clicks.csv"
    copy.write_bytes(path.read_bytes())
    again = ingest_csv(engine, copy, "clickstream")
    assert again.skipped_as_duplicate_file and again.file_id == first.file_id and again.rows == 4
    code, out, _err = run_cli(capsys, db_url, "ingest", "clickstream", str(path))
    assert code == 0 and "already loaded" in out and "nothing to do" in out
    assert table_counts(engine)["clickstream"] == 4
    assert table_counts(engine)["ingested_files"] == 1


def test_blank_lines_and_quoted_multiline_fields(engine, tmp_path):
    path = write_csv(
        tmp_path,
        "queries.csv",
        [
            "",
            "user_id,timestamp,query",
            'u1,2026-10-01 10:00:00,"two\nlines"',
            "",
            "   ",
            'u2,2026-10-01 11:00:00,"say ""hi"", ünïcödé"',
        ],
    )
    assert ingest_csv(engine, path, "search_queries").rows == 2
    assert stored(engine, search_queries) == [
        ("u1", datetime(2026, 10, 1, 10), "two\nlines"),
        ("u2", datetime(2026, 10, 1, 11), 'say "hi", ünïcödé'),
    ]


def test_many_small_blocks_load_the_same_rows(engine, tmp_path):
    rows = [
        f"u{i % 7},2026-10-01 10:{i // 60:02d}:{i % 60:02d},/p/{i},,Web,s{i},{i}"
        for i in range(500)
    ]
    path = clicks_file(tmp_path, rows)
    result = ingest_csv(engine, path, "clickstream", block_bytes=97)
    assert result.rows == 500
    assert [row[0] for row in stored(engine, clickstream, ["url"])] == [
        f"/p/{i}" for i in range(500)
    ]


def test_map_options_ignore_unmapped_columns_and_say_so(engine, tmp_path, capsys, db_url):
    path = write_csv(
        tmp_path,
        "export.csv",
        ["uid,when,page,user_id_hash,browser", "7,1790000000,/a,xx,Firefox", "8,1790000060,/b,yy,"],
    )
    code, out, err = run_cli(
        capsys,
        db_url,
        "ingest",
        "clickstream",
        str(path),
        "--map",
        "user_id=uid",
        "--map",
        "timestamp=when",
        "--map",
        "url=page",
        "--map",
        "device=browser",
        "--timestamp-format",
        "epoch_s",
    )
    assert (code, err) == (0, "")
    assert "loaded 2 rows into clickstream" in out
    assert "ignored columns (not mapped): user_id_hash" in out
    expected = datetime.fromtimestamp(1790000000, tz=timezone.utc).replace(tzinfo=None)
    assert stored(engine, clickstream, ["user_id", "timestamp", "url", "device"]) == [
        ("7", expected, "/a", "Firefox"),
        ("8", expected.replace(minute=expected.minute + 1), "/b", None),
    ]


def test_mapping_file_and_same_named_columns(engine, tmp_path, capsys, db_url):
    path = write_csv(
        tmp_path,
        "views.csv",
        ["user_id,item,timestamp,seconds,extra", "u1,a9,2026-10-01 10:00:00,61.5,x"],
    )
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"article_id": "item", "time_spent": "seconds"}))
    code, out, _err = run_cli(
        capsys, db_url, "ingest", "article_views", str(path), "--mapping", str(mapping)
    )
    assert code == 0 and "ignored columns (not mapped): extra" in out
    assert stored(engine, article_views) == [("u1", "a9", datetime(2026, 10, 1, 10), 61.5)]


@pytest.mark.parametrize(
    "option, text, expected",
    [
        ("epoch_s", "1790000000", datetime(2026, 9, 21, 14, 13, 20)),
        ("epoch_ms", "1790000000999", datetime(2026, 9, 21, 14, 13, 20)),
        ("%d/%m/%Y %H:%M", "02/10/2026 07:05", datetime(2026, 10, 2, 7, 5)),
        (None, "2026-10-02T07:05:00-05:00", datetime(2026, 10, 2, 12, 5)),
        (None, "2026-10-02", datetime(2026, 10, 2)),
    ],
)
def test_timestamp_formats(engine, tmp_path, option, text, expected):
    path = write_csv(tmp_path, "q.csv", ["user_id,timestamp,query", f"u1,{text},shoes"])
    ingest_csv(engine, path, "search_queries", timestamp_format=option)
    assert stored(engine, search_queries, ["timestamp"]) == [(expected,)]


USERS_LINES = [
    "user_id,country,device,plan,signup_date",
    "u1,US,iOS,free,2026-01-05",
    "u2,BR,Web,premium,2025-12-31",
    "u1,FR,Android,basic,2026-02-01",
]


@pytest.mark.parametrize("keep, country", [("first", "US"), ("last", "FR")])
def test_users_keep_chooses_the_row_of_a_repeated_id(engine, tmp_path, keep, country):
    result = ingest_csv(engine, write_csv(tmp_path, "u.csv", USERS_LINES), "users", keep=keep)
    assert (result.rows, result.dropped_rows) == (2, 1)
    rows = dict(
        (row[0], row[1:]) for row in stored(engine, users, ["user_id", "country", "signup_date"])
    )
    assert rows["u1"][0] == country
    assert rows["u2"] == ("BR", date(2025, 12, 31))


def test_users_keep_last_across_blocks(engine, tmp_path):
    lines = ["user_id,country"] + [f"u{i % 50},C{i}" for i in range(400)]
    result = ingest_csv(
        engine, write_csv(tmp_path, "u.csv", lines), "users", keep="last", block_bytes=64
    )
    assert result.rows == 50
    assert dict(stored(engine, users, ["user_id", "country"])) == {
        f"u{i}": f"C{350 + i}" for i in range(50)
    }


def test_reloading_users_replaces_their_rows(engine, tmp_path):
    first = ingest_csv(
        engine, write_csv(tmp_path, "a.csv", ["user_id,plan", "u1,free", "u2,free"]), "users"
    )
    second = ingest_csv(
        engine, write_csv(tmp_path, "b.csv", ["user_id,plan", "u2,premium", "u3,basic"]), "users"
    )
    assert dict(stored(engine, users, ["user_id", "plan"])) == {
        "u1": "free",
        "u2": "premium",
        "u3": "basic",
    }
    assert dict(stored(engine, users, ["user_id", "file_id"])) == {
        "u1": first.file_id,
        "u2": second.file_id,
        "u3": second.file_id,
    }


def test_spaces_around_header_names_are_ignored(engine, tmp_path):
    path = write_csv(
        tmp_path, "q.csv", ["user_id , timestamp,  query", "u1,2026-10-01 10:00:00,a b"]
    )
    assert ingest_csv(engine, path, "search_queries").rows == 1
    assert stored(engine, search_queries) == [("u1", datetime(2026, 10, 1, 10), "a b")]


def test_non_iso_text_is_read_the_same_way_in_every_block(engine, tmp_path):
    # Day 13 cannot be a month; 01/02 is read month first everywhere, not per block.
    lines = ["user_id,timestamp,query", "u1,13/02/2026 10:00,a"] + [
        f"u{i},01/02/2026 10:{i:02d},b" for i in range(2, 40)
    ]
    ingest_csv(engine, write_csv(tmp_path, "q.csv", lines), "search_queries", block_bytes=64)
    stamps = [row[0] for row in stored(engine, search_queries, ["timestamp"])]
    assert stamps[0] == datetime(2026, 2, 13, 10, 0)
    assert {stamp.date() for stamp in stamps[1:]} == {date(2026, 1, 2)}
