"""bulk_insert: the LOAD DATA fast path (MariaDB) and executemany (SQLite) store the same rows."""

from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import select

from segmentation.bulk import bulk_insert, to_tsv_lines
from segmentation.schema import clickstream, user_segments

NASTY = [
    "plain",
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "back\\slash",
    "quote \" and 'single'",
    "\\N",
    "NULL",
    "ünïcödé ✓ 😀",
    "",
]


def test_text_survives_both_paths(engine):
    frame = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(len(NASTY))],
            "timestamp": pd.to_datetime(["2026-11-01 10:00:00"] * len(NASTY)),
            "url": NASTY,
            "referrer": [None, "x"] * (len(NASTY) // 2),
            "time_spent": [1.5, np.nan] * (len(NASTY) // 2),
            "file_id": 1,
        }
    )
    with engine.begin() as conn:
        assert bulk_insert(conn, clickstream, frame) == len(NASTY)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                clickstream.c.url,
                clickstream.c.referrer,
                clickstream.c.time_spent,
                clickstream.c.timestamp,
            ).order_by(clickstream.c.id)
        ).all()
    assert [row.url for row in rows] == NASTY
    assert [row.referrer for row in rows] == [None, "x"] * (len(NASTY) // 2)
    assert [row.time_spent for row in rows] == [1.5, None] * (len(NASTY) // 2)
    assert rows[0].timestamp == datetime(2026, 11, 1, 10, 0, 0)


def test_json_and_floats_round_trip(engine):
    from segmentation.schema import segmentation_runs

    with engine.begin() as conn:
        run_id = conn.execute(
            segmentation_runs.insert().values(
                created_at=datetime(2026, 11, 1),
                source="test",
                algorithm="kmeans",
                k=3,
                params={},
                status="running",
            )
        ).inserted_primary_key[0]
        frame = pd.DataFrame(
            {
                "run_id": run_id,
                "user_id": ["a", "b"],
                "cluster": [0, 2],
                "segment": ["Low Engagement", "Highly Engaged"],
                "score": [-1.25, 0.1 + 0.2],
                "distance": [0.5, 1e-12],
                "features": [{"clicks": 3, "name": "tab\t"}, {"clicks": 0.30000000000000004}],
            }
        )
        bulk_insert(conn, user_segments, frame)
    with engine.connect() as conn:
        rows = conn.execute(select(user_segments).order_by(user_segments.c.user_id)).all()
    assert rows[0].features == {"clicks": 3, "name": "tab\t"}
    assert rows[1].features == {"clicks": 0.30000000000000004}
    assert rows[1].score == 0.1 + 0.2
    assert rows[1].distance == 1e-12


def test_tsv_lines_escape_and_null():
    frame = pd.DataFrame({"url": ["a\tb", None], "time_spent": [np.inf, 2.0]})
    assert to_tsv_lines(frame, clickstream) == ["a\\tb\t\\N", "\\N\t2.0"]
