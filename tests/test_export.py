"""export: the CSV's users are the segment's members in the database, also with filters."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import text

from segmentation.answering import CannotApply, UnknownSegment
from segmentation.cli import main
from segmentation.errors import NoDataError
from segmentation.export import export_csv
from segmentation.queries import SegmentQueries
from segmentation.query import Filter, Query
from tests.factories import seed_tiers


def members_sql(engine, run_id, segment, where="", params=None):
    """The segment's user ids, by SQL written here."""
    sql = "SELECT user_id FROM user_segments WHERE run_id = :run AND segment = :segment " + where
    with engine.connect() as conn:
        rows = conn.execute(text(sql), {"run": run_id, "segment": segment, **(params or {})})
        return {row[0] for row in rows}


def read_csv(data: str):
    return list(csv.DictReader(io.StringIO(data)))


def test_cli_export_to_stdout_equals_the_members(engine, db_url, capsys):
    run = seed_tiers(engine)
    capsys.readouterr()
    assert main(["-q", "--database-url", db_url, "export", "highly engaged"]) == 0
    rows = read_csv(capsys.readouterr().out)
    assert {r["user_id"] for r in rows} == members_sql(engine, run.run_id, "Highly Engaged")
    assert len(rows) == len({r["user_id"] for r in rows}) == 30
    first = rows[0]
    assert list(first)[:3] == ["user_id", "segment", "score"]
    assert {"clicks", "sessions", "recency_days", "country", "device", "plan"} <= set(first)
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    with engine.connect() as conn:  # features and score as stored
        stored = conn.execute(
            text("SELECT score, features FROM user_segments WHERE run_id = :r AND user_id = :u"),
            {"r": run.run_id, "u": first["user_id"]},
        ).one()
    features = stored[1] if isinstance(stored[1], dict) else json.loads(stored[1])
    assert float(first["score"]) == pytest.approx(stored[0])
    assert float(first["clicks"]) == features["clicks"]


def test_cli_export_with_filters_to_a_file(engine, db_url, tmp_path, capsys):
    run = seed_tiers(engine)
    out = tmp_path / "de.csv"
    argv = ["-q", "--database-url", db_url, "export", "Low Engagement", "--out", str(out)]
    assert main(argv + ["--where", "country=us", "--where", "device!=iOS"]) == 0
    expected = members_sql(
        engine,
        run.run_id,
        "Low Engagement",
        "AND country = 'US' AND (device <> 'iOS' OR device IS NULL)",
    )
    rows = read_csv(out.read_text())
    assert expected and {r["user_id"] for r in rows} == expected
    assert {r["country"] for r in rows} == {"US"}
    assert f"{len(expected):,} users written" in capsys.readouterr().err


def test_export_function_every_segment_and_refusals(engine):
    run = seed_tiers(engine)
    queries = SegmentQueries(engine=engine)
    out = io.StringIO()
    n = export_csv(queries, Query("list", filters=(Filter("plan", ("premium",)),)), out)
    everyone = set()
    for segment in ("Low Engagement", "Moderate Engagement", "Highly Engaged"):
        everyone |= members_sql(engine, run.run_id, segment, "AND plan = 'premium'")
    assert n == len(everyone) == 30
    assert {r["user_id"] for r in read_csv(out.getvalue())} == everyone
    assert export_csv(engine, Query("list", segments=("Highly Engaged",)), io.StringIO()) == 30
    with pytest.raises(UnknownSegment):
        export_csv(queries, Query("list", segments=("Casual",)), io.StringIO())
    with pytest.raises(CannotApply, match="platinum"):
        export_csv(queries, Query("list", filters=(Filter("plan", ("platinum",)),)), io.StringIO())


def test_export_of_a_pruned_run_says_so(engine, db_url, capsys):
    seed_tiers(engine)
    build = ["-q", "--database-url", db_url, "build", "--n-init", "3", "--keep-runs", "2"]
    for _ in range(2):
        assert main(build) == 0
    with pytest.raises(NoDataError, match="removed by retention"):
        export_csv(engine, Query("list", run=1), io.StringIO())
    assert main(["-q", "--database-url", db_url, "export", "--run", "1"]) == 4
