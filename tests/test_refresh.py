"""refresh, the refresh lock, retention and --window, on SQLite and MariaDB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select, text

from segmentation.cli import main
from segmentation.config import PROJECT_DIR
from segmentation.errors import NoDataError
from segmentation.locking import EXIT_BUSY, refresh_lock
from segmentation.queries import SegmentQueries
from segmentation.query import Query
from segmentation.render.markup import plain
from segmentation.render.runs import run_info
from segmentation.schema import clickstream, segment_profiles, segmentation_runs
from tests.factories import (
    click,
    insert_frame,
    load_population,
    runs_and_row_counts,
    tiered_population,
)

FAST = ["--n-init", "3", "--stability-runs", "1"]


def cli(db_url, *argv):
    return main(["-q", "--database-url", db_url, *argv])


def complete_runs(engine):
    with engine.connect() as conn:
        return conn.execute(
            select(segmentation_runs)
            .where(segmentation_runs.c.status == "complete")
            .order_by(segmentation_runs.c.id)
        ).all()


def test_refresh_builds_only_after_new_data_with_the_runs_settings(engine, db_url, capsys):
    load_population(engine, tiered_population(20))
    assert cli(db_url, "build", *FAST, "--random-state", "7") == 0
    assert cli(db_url, "refresh") == 0
    assert "Nothing new since run #1" in capsys.readouterr().out
    assert len(complete_runs(engine)) == 1

    insert_frame(engine, clickstream, [click("late1", 0.5, "/new")])
    assert cli(db_url, "refresh") == 0
    assert "the data changed since run #1" in capsys.readouterr().out
    runs = complete_runs(engine)
    assert len(runs) == 2
    assert runs[1].params["settings"] == runs[0].params["settings"]
    assert runs[1].params["settings"]["random_state"] == 7
    assert runs[1].params["settings"]["n_init"] == 3
    assert runs[1].n_users == 61

    assert cli(db_url, "refresh") == 0
    assert len(complete_runs(engine)) == 2
    insert_frame(engine, clickstream, [click("late2", 0.2, "/new")])
    assert cli(db_url, "refresh") == 0
    assert len(complete_runs(engine)) == 3  # exactly two new runs, each after a load
    assert cli(db_url, "refresh", "--force") == 0
    assert len(complete_runs(engine)) == 4


def test_refresh_of_a_feature_table_keeps_its_features(engine, db_url):
    from tests.factories import insert_feature_table

    rows = {f"u{i}": {"a": float(i % 7), "b": float(i % 5), "c": float(i % 3)} for i in range(40)}
    insert_feature_table(engine, "apps", rows, lower=("c",))
    assert cli(db_url, "build", "--source", "features:apps", "--features", "a,c", *FAST) == 0
    assert cli(db_url, "refresh") == 0
    assert len(complete_runs(engine)) == 1
    assert cli(db_url, "refresh", "--force") == 0
    runs = complete_runs(engine)
    assert runs[1].source == "features:apps"
    assert runs[1].params["features"] == ["a", "c"]
    assert runs[1].params["lower_is_better"] == ["c"]


def test_a_second_refresh_exits_with_a_clear_message_or_waits(engine, db_url, capsys):
    load_population(engine, tiered_population(10))
    with refresh_lock(engine):
        assert cli(db_url, "refresh") == EXIT_BUSY
        assert "another refresh or build is running" in capsys.readouterr().err
        assert cli(db_url, "build", *FAST) == EXIT_BUSY
    assert complete_runs(engine) == []

    def hold_briefly():
        with refresh_lock(engine):
            held.set()
            time.sleep(1.5)

    held = threading.Event()
    holder = threading.Thread(target=hold_briefly)
    holder.start()
    held.wait(10)
    started = time.monotonic()
    assert cli(db_url, "refresh", "--wait", "30") == 0
    assert time.monotonic() - started >= 0.5
    holder.join()
    assert len(complete_runs(engine)) == 1


def test_two_concurrent_refreshes_on_mariadb_make_one_run(mariadb_engine):
    engine = mariadb_engine
    url = engine.url.render_as_string(hide_password=False)
    load_population(engine, tiered_population(20))
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    command = [sys.executable, "-m", "segmentation", "-q", "--database-url", url, "refresh"]
    procs = [
        subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes in ([0, 0], [0, EXIT_BUSY]), results
    assert len(complete_runs(engine)) == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(segmentation_runs)).scalar() == 1


def test_two_refreshes_waiting_on_mariadb_still_make_one_run(mariadb_engine):
    """Both wait for the lock: the second sees the first's run and builds nothing."""
    engine = mariadb_engine
    url = engine.url.render_as_string(hide_password=False)
    load_population(engine, tiered_population(10))
    outcomes = []

    def run():
        outcomes.append(main(["-q", "--database-url", url, "refresh", "--wait", "120"]))

    with refresh_lock(engine):
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        assert complete_runs(engine) == []  # both are waiting
    for thread in threads:
        thread.join(300)
    assert outcomes == [0, 0]
    assert len(complete_runs(engine)) == 1


def test_retention_deletes_old_user_rows_in_one_go_and_keeps_sizes(engine, db_url, capsys):
    load_population(engine, tiered_population(10))
    for _ in range(4):
        assert cli(db_url, "build", *FAST, "--keep-runs", "3") == 0
    runs, counts = runs_and_row_counts(engine)
    assert [r.id for r in runs] == [1, 2, 3, 4]
    assert counts == {2: 30, 3: 30, 4: 30}
    assert runs[0].params["pruned"] is True and "pruned" not in runs[1].params
    assert "removed the per-user rows of run(s) #1" in capsys.readouterr().out
    assert cli(db_url, "prune", "--keep-runs", "2") == 0
    runs, counts = runs_and_row_counts(engine)
    assert counts == {3: 30, 4: 30}
    with engine.connect() as conn:  # sizes over time are still there for every run
        sizes = conn.execute(
            select(segment_profiles.c.run_id, func.sum(segment_profiles.c.size)).group_by(
                segment_profiles.c.run_id
            )
        ).all()
    assert dict(sizes) == {1: 30, 2: 30, 3: 30, 4: 30}
    assert cli(db_url, "prune", "--keep-runs", "1") == 2  # never the current or previous run
    capsys.readouterr()
    assert cli(db_url, "changes", "--from-run", "1") == 4  # not "every user is new"
    assert "removed by retention" in capsys.readouterr().err
    with pytest.raises(NoDataError, match="removed by retention"):
        SegmentQueries(engine=engine).answer(Query("list", run=2))
    assert cli(db_url, "ask", "how have the segment sizes changed over the runs?") == 0
    assert "#1" in capsys.readouterr().out


def test_window_counts_only_the_last_days_of_events(engine, db_url):
    load_population(engine, tiered_population(15))
    insert_frame(  # old activity that a 25-day window must not count
        engine,
        clickstream,
        [click("l000", 40 + i, f"/old{i}") for i in range(30)] + [click("old1", 50, "/x")],
    )
    assert cli(db_url, "build", *FAST, "--window", "25d") == 0
    run = complete_runs(engine)[-1]
    assert run.params["window_days"] == pytest.approx(25.0)
    with engine.connect() as conn:
        last = max(
            pd.Timestamp(conn.execute(text(f"SELECT MAX(timestamp) FROM {table}")).scalar())
            for table in ("clickstream", "search_queries", "article_views")
        )
        cutoff = (last - timedelta(days=25)).to_pydatetime()

        def per_user(sql):
            return dict(conn.execute(text(sql), {"cutoff": cutoff}).all())

        clicks = per_user(
            "SELECT user_id, COUNT(*) FROM clickstream WHERE timestamp >= :cutoff GROUP BY user_id"
        )
        searches = per_user(
            "SELECT user_id, COUNT(*) FROM search_queries WHERE timestamp >= :cutoff "
            "GROUP BY user_id"
        )
        views = per_user(
            "SELECT user_id, COUNT(*) FROM article_views WHERE timestamp >= :cutoff "
            "GROUP BY user_id"
        )
        stored = dict(
            conn.execute(
                text("SELECT user_id, features FROM user_segments WHERE run_id = :run"),
                {"run": run.id},
            ).all()
        )
    stored = {u: json.loads(f) if isinstance(f, str) else f for u, f in stored.items()}
    assert set(stored) == set(clicks) | set(searches) | set(views)
    assert "old1" not in stored
    for user, features in stored.items():
        assert features["clicks"] == clicks.get(user, 0), user
        assert features["searches"] == searches.get(user, 0), user
        assert features["article_views"] == views.get(user, 0), user
    assert stored["l000"]["clicks"] < 30
    said = plain(run_info(SegmentQueries(engine=engine).current_run()))
    assert "counting only the last 25 days of events" in said
    # refresh keeps the run's window; --window all goes back to every event
    assert cli(db_url, "refresh") == 0
    assert len(complete_runs(engine)) == 1
    assert cli(db_url, "refresh", "--window", "all") == 0
    runs = complete_runs(engine)
    assert len(runs) == 2 and "window_days" not in runs[1].params


def test_a_run_without_a_watermark_is_refreshed(engine, db_url, capsys):
    """Runs built before watermarks were kept: the first refresh rebuilds, the next doesn't."""
    load_population(engine, tiered_population(10))
    assert cli(db_url, "build", *FAST) == 0
    with engine.begin() as conn:
        params = dict(conn.execute(select(segmentation_runs.c.params)).scalar_one())
        for key in ("watermark", "settings"):
            params.pop(key)
        conn.execute(segmentation_runs.update().values(params=params))
    capsys.readouterr()
    assert cli(db_url, "refresh") == 0
    assert "run #1 recorded no watermark" in capsys.readouterr().out
    assert cli(db_url, "refresh") == 0
    runs = complete_runs(engine)
    assert len(runs) == 2 and runs[1].params["settings"]["n_init"] == 3
