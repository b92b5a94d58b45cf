"""The Spark engine (local mode) against the scikit-learn engine, on the same MariaDB events.

Expected per-user numbers come from SQL written here; sizes are compared between the two
engines' runs as stored in the database. With CI=true a missing Spark, Java or JDBC jar fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from segmentation import db
from segmentation.build import build_segments
from segmentation.cli import main as segmentation_main
from segmentation.clustering import ClusterSettings
from segmentation.config import PROJECT_DIR
from segmentation.demo import load_demo
from segmentation.engine import make_engine
from segmentation.queries import SegmentQueries
from segmentation.schema import ensure_schema
from tests.conftest import in_ci
from tests.servers import own_database

USERS = 3000
FAST = dict(n_init=2, stability_runs=1, silhouette_exact_max=2000, sample_size=2000)


def _spark_ready() -> None:
    """Fail (CI) or skip (laptop) when pyspark, Java or the MariaDB JDBC jar is missing."""
    try:
        import pyspark  # noqa: F401

        from segmentation.spark_io import jar_path

        jar_path("mysql")
        subprocess.run(["java", "-version"], capture_output=True, check=True, timeout=30)
    except Exception as exc:  # noqa: BLE001 - any of them missing means "can't run"
        message = f"Spark is not usable here: {exc} (run scripts/ensure-spark)"
        if in_ci():
            pytest.fail(message + " (CI=true: Spark tests must run)", pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="module")
def events(mariadb_database, tmp_path_factory):
    """A MariaDB database of its own with demo events for USERS users: (url, csv files)."""
    _spark_ready()
    with own_database(mariadb_database, "spark") as url:
        engine = db.get_engine(url)
        ensure_schema(engine)
        yield url, load_demo(engine, USERS, 11, tmp_path_factory.mktemp("spark-events"))


@pytest.fixture(scope="module")
def spark():
    from segmentation.spark_io import session

    _spark_ready()
    session_ = session("local[2]", "mysql", app="tests")
    yield session_
    session_.stop()


@pytest.fixture(scope="module")
def runs(events, spark):
    """One scikit-learn run and one Spark run on the same events: (url, sklearn id, spark id)."""
    url, _ = events
    engine = db.get_engine(url)
    settings = ClusterSettings(**FAST)
    sklearn_run = build_segments(engine, settings)
    spark_run = build_segments(engine, settings, compute=make_engine("spark", spark=spark))
    return url, sklearn_run.run_id, spark_run.run_id


def sql(url: str, query: str, **params):
    with db.get_engine(url).connect() as conn:
        return conn.execute(text(query), params).all()


def _features(url: str, run_id: int) -> dict:
    rows = sql(url, "SELECT user_id, features FROM user_segments WHERE run_id = :r", r=run_id)
    return {
        row.user_id: json.loads(row.features) if isinstance(row.features, str) else row.features
        for row in rows
    }


def test_spark_features_equal_sql_and_scikit_learn(runs):
    url, sklearn_id, spark_id = runs
    spark_features = _features(url, spark_id)
    everyone = sql(
        url,
        "SELECT COUNT(*) FROM (SELECT user_id FROM clickstream UNION SELECT user_id FROM "
        "search_queries UNION SELECT user_id FROM article_views) u",
    )[0][0]
    assert len(spark_features) == everyone == USERS
    clicks = dict(
        sql(
            url,
            "SELECT user_id, COUNT(*) FROM clickstream GROUP BY user_id",
        )
    )
    pages = dict(sql(url, "SELECT user_id, COUNT(DISTINCT url) FROM clickstream GROUP BY user_id"))
    days = dict(
        sql(
            url, "SELECT user_id, COUNT(DISTINCT DATE(timestamp)) FROM clickstream GROUP BY user_id"
        )
    )
    searches = dict(sql(url, "SELECT user_id, COUNT(*) FROM search_queries GROUP BY user_id"))
    reading = dict(
        sql(
            url,
            "SELECT user_id, SUM(time_spent) / COUNT(time_spent) FROM article_views "
            "WHERE time_spent IS NOT NULL GROUP BY user_id",
        )
    )
    last = sql(url, "SELECT MAX(timestamp) FROM clickstream")[0][0]
    recency = dict(
        sql(
            url,
            "SELECT user_id, TIMESTAMPDIFF(SECOND, MAX(timestamp), :last) / 86400 "
            "FROM clickstream GROUP BY user_id",
            last=last,
        )
    )
    for user, values in spark_features.items():
        assert values["clicks"] == clicks.get(user, 0), user
        assert values["distinct_pages"] == pages.get(user, 0), user
        assert values["active_days"] == days.get(user, 0), user
        assert values["searches"] == searches.get(user, 0), user
        assert values["avg_article_time"] == pytest.approx(float(reading.get(user, 0)), abs=1e-6)
        if user in recency:  # (a user's last event may be a search or a view: that's sooner)
            assert values["recency_days"] <= float(recency[user]) + 1e-4
    assert_same_features(spark_features, _features(url, sklearn_id))


def assert_same_features(these: dict, those: dict) -> None:
    """Same users, same features, same values (to floating-point noise)."""
    assert these.keys() == those.keys()
    for user, values in these.items():
        assert values == pytest.approx(those[user], rel=1e-9, abs=1e-9), user


def test_same_names_same_order_sizes_within_two_percent(runs):
    url, sklearn_id, spark_id = runs
    query = "SELECT segment, `rank`, size FROM segment_profiles WHERE run_id = :r ORDER BY `rank`"
    ours, theirs = sql(url, query, r=sklearn_id), sql(url, query, r=spark_id)
    assert [row.segment for row in theirs] == [row.segment for row in ours]
    assert [row.segment for row in theirs] == [
        "Low Engagement",
        "Moderate Engagement",
        "Highly Engaged",
    ]
    for mine, other in zip(ours, theirs):
        assert abs(mine.size - other.size) <= 0.02 * USERS, (mine, other)
    counted = dict(
        sql(
            url,
            "SELECT segment, COUNT(*) FROM user_segments WHERE run_id = :r GROUP BY 1",
            r=spark_id,
        )
    )
    assert counted == {row.segment: row.size for row in theirs}


def test_query_layer_reads_a_spark_run_unchanged(runs):
    url, _, spark_id = runs
    queries = SegmentQueries(engine=db.get_engine(url))
    overview = queries.overview()
    assert overview.run.id == spark_id
    expected = dict(
        sql(
            url,
            "SELECT segment, COUNT(*) FROM user_segments WHERE run_id = :r GROUP BY 1",
            r=spark_id,
        )
    )
    assert {s.name: s.size for s in overview.segments} == expected
    model = json.loads(
        sql(url, "SELECT model FROM segmentation_runs WHERE id = :r", r=spark_id)[0][0]
    )
    assert model["engine"] == "spark"
    params = json.loads(
        sql(url, "SELECT params FROM segmentation_runs WHERE id = :r", r=spark_id)[0][0]
    )
    assert params["engine"] == "spark"
    user = sql(
        url, "SELECT user_id, segment FROM user_segments WHERE run_id = :r LIMIT 1", r=spark_id
    )[0]
    found = queries.user_segment(user.user_id)
    assert found.segment == user.segment
    assert found.distances[0][0] == user.segment  # k-means: the nearest centre, from the model


def test_event_files_give_the_same_features_as_the_tables(runs, events, spark, tmp_path):
    url, _, spark_id = runs
    _, files = events
    parquet = tmp_path / "clickstream.parquet"
    spark.read.option("header", "true").csv(str(files["clickstream"])).write.parquet(str(parquet))
    engine = db.get_engine(url)
    compute = make_engine(
        "spark",
        spark=spark,
        event_files=[
            f"clickstream={parquet}",
            f"search_queries={files['search_queries']}",
            f"article_views={files['article_views']}",
        ],
    )
    from_files = build_segments(engine, ClusterSettings(**FAST), compute=compute)
    assert_same_features(_features(url, from_files.run_id), _features(url, spark_id))
    detail = json.loads(
        sql(url, "SELECT params FROM segmentation_runs WHERE id = :r", r=from_files.run_id)[0][0]
    )["source_detail"]
    assert detail["files"]["clickstream"] == str(parquet)


def test_spark_submit_runs_the_build_as_docs_scale_md_says(runs, tmp_path):
    """docs/scale.md's spark-submit command, on local[2]: a complete Spark run, current."""
    import pyspark

    url, _, _ = runs
    package = shutil.make_archive(
        str(tmp_path / "segmentation"), "zip", root_dir=PROJECT_DIR, base_dir="segmentation"
    )
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    from segmentation.spark_io import jar_path

    out = subprocess.run(
        [str(submit), "--master", "local[2]", "--jars", str(jar_path("mysql"))]
        + ["--py-files", str(package), "segmentation/__main__.py", "--database-url", url]
        + ["build", "--engine", "spark", "--n-init", "1", "--stability-runs", "0"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            **os.environ,
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
        },
    )
    assert out.returncode == 0, out.stderr[-3000:]
    run = sql(url, "SELECT id, params FROM segmentation_runs ORDER BY id DESC LIMIT 1")[0]
    params = json.loads(run.params)
    assert params["engine"] == "spark" and params["source_detail"]["master"] == "local[2]"
    assert SegmentQueries(engine=db.get_engine(url)).current_run().id == run.id
    assert f"Run #{run.id} is current" in out.stdout


def test_cli_refuses_what_the_spark_engine_does_not_do(events, capsys):
    url, files = events
    base = ["--database-url", url, "build"]
    assert segmentation_main(base + ["--events-file", f"clickstream={files['clickstream']}"]) != 0
    assert "--engine spark" in capsys.readouterr().err
    code = segmentation_main(base + ["--engine", "spark", "--events-file", "nothing=/x.csv"])
    assert code != 0 and "TABLE=PATH" in capsys.readouterr().err


def _wait(build, condition, what: str, log, timeout: float = 300.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and build.poll() is None:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"no {what} (build exit code {build.poll()}): {log.read_text()[-3000:]}")


def test_killed_spark_build_leaves_previous_run_current(runs, tmp_path):
    """Before the build starts, the test locks the range of segment_profiles rows a new run
    would insert, so the build's write transaction (user rows first, then profiles) waits
    there: the kill lands inside that transaction, every time."""
    url, _, _ = runs
    current = SegmentQueries(engine=db.get_engine(url)).current_run().id
    last = sql(url, "SELECT MAX(id) FROM segmentation_runs")[0][0]
    locker = db.get_engine(url).connect()
    trx = locker.begin()
    locker.execute(
        text("SELECT run_id FROM segment_profiles WHERE run_id > :r FOR UPDATE"), {"r": last}
    )
    build = subprocess.Popen(
        [sys.executable, "-m", "segmentation", "--quiet", "--database-url", url, "build"]
        + ["--engine", "spark", "--spark-master", "local[2]", "--n-init", "1"]
        + ["--stability-runs", "0", "--silhouette-exact-max", "1000"],
        cwd=PROJECT_DIR,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "build.log").open("w"),
        env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)},
    )
    try:
        waiting = _wait(
            build,
            lambda: sql(
                url,
                "SELECT info FROM information_schema.processlist "
                "WHERE info LIKE 'INSERT INTO segment_profiles%%'",
            ),
            "write transaction waiting to insert the profiles",
            tmp_path / "build.log",
        )
        assert "INSERT INTO segment_profiles" in waiting[0][0]
        build.send_signal(signal.SIGKILL)
        assert build.wait() == -signal.SIGKILL
    finally:
        trx.rollback()
        locker.close()
        if build.poll() is None:
            build.kill()
    killed = sql(url, "SELECT id, status FROM segmentation_runs WHERE id > :r", r=last)
    assert [row.status for row in killed] == ["running"]
    rows = "SELECT COUNT(*) FROM user_segments WHERE run_id = :r"
    assert sql(url, rows, r=killed[0].id)[0][0] == 0  # its user rows were written, then undone
    assert SegmentQueries(engine=db.get_engine(url)).current_run().id == current


def test_spark_reads_sqlite_too(spark, tmp_path):
    """The embedded SQLite database (make demo's) over the SQLite JDBC driver: its DATETIME
    text and REAL columns read as timestamps and doubles, features as the scikit-learn path's."""
    from segmentation.spark_io import jar_path

    jar_path("sqlite")
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    engine = db.get_engine(url)
    ensure_schema(engine)
    load_demo(engine, 300, 5, tmp_path / "csv")
    settings = ClusterSettings(**FAST)
    sklearn_run = build_segments(engine, settings)
    spark_run = build_segments(engine, settings, compute=make_engine("spark", spark=spark))
    assert_same_features(_features(url, spark_run.run_id), _features(url, sklearn_run.run_id))
    assert spark_run.sizes.keys() == sklearn_run.sizes.keys()


def test_window_and_refresh_stay_on_spark(runs, spark):
    """--window counts the same events on both engines; refresh rebuilds a Spark run on Spark
    with the run's window."""
    from datetime import timedelta

    from segmentation.refresh import refresh

    url, _, _ = runs
    engine = db.get_engine(url)
    settings = ClusterSettings(**FAST)
    window = timedelta(days=10)
    ours = build_segments(engine, settings, window=window)
    theirs = build_segments(
        engine, settings, window=window, compute=make_engine("spark", spark=spark)
    )
    windowed = _features(url, theirs.run_id)
    assert_same_features(windowed, _features(url, ours.run_id))
    last = sql(
        url,
        "SELECT GREATEST((SELECT MAX(timestamp) FROM clickstream), "
        "(SELECT MAX(timestamp) FROM search_queries), (SELECT MAX(timestamp) FROM article_views))",
    )[0][0]
    clicks = dict(
        sql(
            url,
            "SELECT user_id, COUNT(*) FROM clickstream WHERE timestamp >= :since GROUP BY 1",
            since=last - window,
        )
    )
    assert {u: v["clicks"] for u, v in windowed.items() if v["clicks"]} == clicks
    refreshed = refresh(engine, force=True).built
    params = json.loads(
        sql(url, "SELECT params FROM segmentation_runs WHERE id = :r", r=refreshed.run_id)[0][0]
    )
    assert params["engine"] == "spark" and params["window_days"] == 10
    assert_same_features(_features(url, refreshed.run_id), windowed)
    assert spark.sparkContext._jsc is not None  # the test's session is still alive
