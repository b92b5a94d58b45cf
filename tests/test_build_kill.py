"""A build killed while writing leaves the previous run current and complete."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
from sqlalchemy import select

from segmentation.build import build_segments
from segmentation.clustering import ClusterSettings
from segmentation.config import PROJECT_DIR
from segmentation.queries import SegmentQueries
from segmentation.schema import segmentation_runs
from tests.factories import insert_feature_table, runs_and_row_counts

USERS = 100_000


def _big_feature_table(engine) -> None:
    rng = np.random.RandomState(0)
    minutes, visits = rng.lognormal(3, 1, USERS), rng.poisson(5, USERS).astype(float)
    rows = {
        f"u{i:06d}": {"minutes": m, "visits": v} for i, (m, v) in enumerate(zip(minutes, visits))
    }
    insert_feature_table(engine, "big", rows)


def test_kill_mid_write_keeps_previous_run(engine, db_url):
    _big_feature_table(engine)
    fast = ClusterSettings(n_init=1, stability_runs=0, silhouette_exact_max=1000, sample_size=1000)
    previous = build_segments(engine, fast, source="features:big")
    build = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "segmentation",
            "--quiet",
            "--database-url",
            db_url,
            "build",
            "--source",
            "features:big",
            "--n-init",
            "1",
            "--stability-runs",
            "0",
            "--silhouette-exact-max",
            "1000",
        ],
        cwd=PROJECT_DIR,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)},
    )
    line = ""
    while "Writing run #" not in line:
        line = build.stderr.readline()
        assert line or build.poll() is None, "build ended before writing"
    time.sleep(0.5)  # inside the write transaction
    build.send_signal(signal.SIGKILL)
    assert build.wait() == -signal.SIGKILL
    runs, counts = runs_and_row_counts(engine)
    assert [r.status for r in runs] == ["complete", "running"], "killed too late: it finished"
    assert counts == {previous.run_id: USERS}  # nothing of the killed run is visible
    overview = SegmentQueries(engine=engine).overview()
    assert overview.run.id == previous.run_id and overview.total_users == USERS
    # The next build marks the interrupted run failed and becomes current.
    following = build_segments(engine, fast, source="features:big")
    with engine.connect() as conn:
        statuses = (
            conn.execute(select(segmentation_runs.c.status).order_by(segmentation_runs.c.id))
            .scalars()
            .all()
        )
    assert statuses == ["complete", "failed", "complete"]
    assert SegmentQueries(engine=engine).current_run().id == following.run_id
