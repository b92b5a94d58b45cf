"""Exporting a segment's members as CSV: peak memory at 1,000,000 users, on MariaDB.

Writes a synthetic complete run of `--users` users (ten features, country/device/plan) straight
into a scratch MariaDB database, then runs `python -m segmentation export` in a fresh process
per case (filtered slices of a segment, a segment, every user) and prints each case's rows, wall
time, rows per second, CSV size and the process's peak RSS. Memory that stays flat from a few
thousand rows to a million is what streaming (a server-side cursor, fetched in chunks) buys.

    .venv/bin/python bench/bench_export.py                  # 1,000,000 users (~3 min)
    .venv/bin/python bench/bench_export.py --users 100000   # quicker
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import List, Optional

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.common import print_table, scratch_database  # noqa: E402
from segmentation import db  # noqa: E402
from segmentation.bulk import bulk_insert  # noqa: E402
from segmentation.schema import (  # noqa: E402
    ensure_schema,
    segment_profiles,
    segmentation_runs,
    user_segments,
)

NAMES = ("Low Engagement", "Moderate Engagement", "Highly Engaged")
FEATURES = (
    "clicks",
    "distinct_pages",
    "active_days",
    "sessions",
    "recency_days",
    "searches",
    "article_views",
    "total_article_time",
    "avg_article_time",
    "avg_click_time",
)
VALUES = {
    "country": ["BR", "DE", "FR", "IN", "US"],
    "device": ["Android", "Web", "iOS"],
    "plan": ["basic", "free", "premium"],
}
CHUNK = 200_000
# Peak RSS from VmHWM: ru_maxrss would also count the (large) parent's pages at fork time.
CHILD = """
import json, sys, time
sys.path.insert(0, {project!r})
from segmentation.cli import main
started = time.perf_counter()
code = main({argv!r})
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print(json.dumps({{"code": code, "wall": time.perf_counter() - started,
    "rss_mb": int(hwm) / 1024}}))
"""


def write_run(url: str, users: int, seed: int = 0) -> None:
    """A complete run of `users` synthetic users, written directly (no clustering)."""
    engine = db.get_engine(url)
    ensure_schema(engine)
    rng = np.random.RandomState(seed)
    params = {
        "features": list(FEATURES),
        "attributes": ["country", "device", "plan"],
        "values": VALUES,
        "cells": False,
        "names": list(NAMES),
    }
    with db.begin(engine) as conn:
        conn.execute(
            segmentation_runs.insert().values(
                id=1,
                created_at=datetime(2026, 12, 1),
                finished_at=datetime(2026, 12, 1),
                source="events",
                algorithm="kmeans",
                k=3,
                params=params,
                model={"names": list(NAMES)},
                metrics={},
                n_users=users,
                status="complete",
            )
        )
        ranks = rng.randint(0, 3, users)
        for start in range(0, users, CHUNK):
            n = min(CHUNK, users - start)
            values = rng.gamma(2.0, 10.0, (n, len(FEATURES))).round(3)
            frame = pd.DataFrame(
                {
                    "run_id": 1,
                    "user_id": [f"user{i:07d}" for i in range(start, start + n)],
                    "cluster": ranks[start : start + n],
                    "segment": [NAMES[r] for r in ranks[start : start + n]],
                    "score": rng.normal(0, 1, n),
                    "distance": rng.gamma(1.0, 1.0, n),
                    "features": [dict(zip(FEATURES, row)) for row in values.tolist()],
                    "country": rng.choice(VALUES["country"], n),
                    "device": rng.choice(VALUES["device"], n),
                    "plan": rng.choice(VALUES["plan"], n),
                }
            )
            bulk_insert(conn, user_segments, frame)
            print(f"  {start + n:,} users written", file=sys.stderr, flush=True)
        conn.execute(
            segment_profiles.insert(),
            [
                {
                    "run_id": 1,
                    "segment": name,
                    "rank": rank,
                    "cluster": rank,
                    "size": int((ranks == rank).sum()),
                    "share": float((ranks == rank).mean()),
                    "score": float(rank),
                    "means": {},
                    "medians": {},
                    "centre": {},
                }  # fmt: skip
                for rank, name in enumerate(NAMES)
            ],
        )


def export(url: str, out: Path, *args: str) -> dict:
    """`python -m segmentation export ARGS --out OUT` in a fresh process: wall time, peak RSS."""
    argv = ["-q", "--database-url", url, "export", *args, "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(project=str(PROJECT), argv=argv)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    rows = sum(1 for _ in out.open()) - 1
    result.update(process=time.perf_counter() - started, rows=rows, mb=out.stat().st_size / 2**20)
    return result


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    cases = [
        ("one segment, three filters", ["Highly Engaged", "--where", "country=DE",
                                            "--where", "device=Web", "--where", "plan=premium"]),
        ("one segment, filtered", ["Highly Engaged", "--where", "country=DE"]),
        ("one segment", ["Highly Engaged"]),
        ("every user", []),
    ]  # fmt: skip
    with scratch_database("si_bench_export") as url, tempfile.TemporaryDirectory() as folder:
        print(f"... writing a run of {args.users:,} users", file=sys.stderr, flush=True)
        started = time.perf_counter()
        write_run(url, args.users)
        print(f"... written in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        rows = []
        for label, extra in cases:
            result = export(url, Path(folder) / "export.csv", *extra)
            rows.append(
                [
                    label,
                    f"{result['rows']:,}",
                    f"{result['mb']:,.1f}",
                    f"{result['wall']:.1f}",
                    f"{result['rows'] / result['wall']:,.0f}",
                    f"{result['rss_mb']:,.0f}",
                ]
            )
    print(f"\nexport to CSV from a run of {args.users:,} users, MariaDB, fresh process per case:")
    print_table(["case", "rows", "CSV MB", "seconds", "rows/s", "peak RSS MB"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
