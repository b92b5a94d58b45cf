"""Build speed against a bare GROUP BY scan, at three sizes, on MariaDB. Prints figures only.

For each size: generate demo data (cached), load it into a scratch MariaDB database, time a
bare `SELECT user_id, COUNT(*) ... GROUP BY user_id` over each event table (once to bring the
tables into memory, then before and after the build; the mean of those two is the baseline,
given the same temporary-table room as the build), then run the whole build (aggregate, cluster, write) in a
fresh process and record its wall time and peak RSS. Also times the seed project's joined query
(raw tables LEFT JOINed, then grouped) on small data, against our aggregation.

    .venv/bin/python bench/bench_build.py                         # 10k, 100k, 1M users
    .venv/bin/python bench/bench_build.py --sizes 2000,20000      # quicker
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from sqlalchemy import create_engine, text  # noqa: E402

from bench.common import cache_dir, print_table, scratch_database  # noqa: E402
from segmentation import db  # noqa: E402
from segmentation.config import aggregate_tmp_table_bytes  # noqa: E402
from segmentation.demo_data import generate_demo_data  # noqa: E402
from segmentation.features import aggregate_event_features  # noqa: E402
from segmentation.ingest import ingest_csv  # noqa: E402
from segmentation.schema import ensure_schema  # noqa: E402

EVENT_TABLES = ("clickstream", "search_queries", "article_views")
# The seed project's query: raw tables joined on user_id, then grouped.
SEED_QUERY = """
SELECT c.user_id, COUNT(DISTINCT c.url) AS total_clicks, COUNT(DISTINCT s.query) AS searches,
       ROUND(AVG(a.time_spent), 2) AS article_time, ROUND(AVG(c.time_spent), 2) AS click_time
FROM clickstream c
LEFT JOIN search_queries s ON c.user_id = s.user_id
LEFT JOIN article_views a ON c.user_id = a.user_id
GROUP BY c.user_id
"""
CHILD = """
import json, resource, sys, time
sys.path.insert(0, {project!r})
from segmentation import db
from segmentation.build import build_segments
started = time.perf_counter()
result = build_segments(db.get_engine({url!r}))
print(json.dumps({{"wall": time.perf_counter() - started, "phases": result.seconds,
    "users": result.n_users, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def group_by_scan(url: str) -> float:
    """Seconds for a bare GROUP BY user_id over every event table, all rows fetched, with the
    same room for temporary tables as the build's aggregation (SI_AGGREGATE_TMP_TABLE_MB)."""
    engine = create_engine(url, future=True)
    started = time.perf_counter()
    with engine.connect() as conn:
        db.use_memory_temp_tables(conn, aggregate_tmp_table_bytes())
        for table in EVENT_TABLES:
            conn.execute(text(f"SELECT user_id, COUNT(*) FROM {table} GROUP BY user_id")).fetchall()
    engine.dispose()
    return time.perf_counter() - started


def run_build(url: str) -> dict:
    """The whole build in a fresh process: its wall time, phases and peak RSS."""
    code = CHILD.format(project=str(PROJECT), url=url)
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def load(url: str, files: Dict[str, Path]) -> Dict[str, float]:
    engine = db.get_engine(url)
    ensure_schema(engine)
    events, started = 0, time.perf_counter()
    for table in EVENT_TABLES:
        events += ingest_csv(engine, files[table], table).rows
    seconds = time.perf_counter() - started
    ingest_csv(engine, files["users"], "users")
    db.dispose_engines()
    return {"events": events, "ingest_s": seconds, "events_per_s": events / seconds}


def measure_size(users: int, seed: int) -> dict:
    data = cache_dir() / f"demo-{users}-seed{seed}"
    started = time.perf_counter()
    files = generate_demo_data(data, users, seed=seed)
    generated = time.perf_counter() - started
    with scratch_database(f"bench_build_{users}") as url:
        figures = {"users": users, "generate_s": generated, **load(url, files)}
        first = group_by_scan(url)  # right after the load: pages not yet in memory
        before = group_by_scan(url)
        build = run_build(url)
        after = group_by_scan(url)
    baseline = (before + after) / 2
    return {
        **figures,
        "baseline_s": baseline,
        "baseline_runs": (first, before, after),
        "build_s": build["wall"],
        "phases": build["phases"],
        "ratio": build["wall"] / baseline,
        "rss_mb": build["rss_mb"],
    }


def seed_query_comparison(users: int, per_source: int, timeout_s: int) -> dict:
    """The seed project's joined query vs our per-source aggregation on the same small data."""
    from bench.common import uniform_events

    with scratch_database(f"bench_seed_{users}") as url:
        engine = db.get_engine(url)
        ensure_schema(engine)
        uniform_events(engine, users, per_source)
        started = time.perf_counter()
        aggregate_event_features(engine)
        ours = time.perf_counter() - started
        seed: Optional[float] = None
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f"SET SESSION max_statement_time = {timeout_s}")
                started = time.perf_counter()
                conn.execute(text(SEED_QUERY)).fetchall()
                seed = time.perf_counter() - started
        except Exception:  # noqa: BLE001 - a timeout is a result too
            seed = None
        db.dispose_engines()
    return {
        "users": users,
        "per_source": per_source,
        "ours_s": ours,
        "seed_s": seed,
        "timeout": timeout_s,
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="users per size")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--seed-query-users", default="300,1000", help="sizes for the seed query")
    parser.add_argument("--seed-query-timeout", type=int, default=600)
    args = parser.parse_args(argv)

    rows = []
    for users in [int(n) for n in args.sizes.split(",")]:
        print(f"... {users:,} users", file=sys.stderr, flush=True)
        rows.append(measure_size(users, args.seed))
    smallest = rows[0]
    print("\nBuild (aggregate + cluster + write) against a bare GROUP BY user_id scan, MariaDB:")
    print_table(
        [
            "users",
            "events",
            "ingest ev/s",
            "GROUP BY s",
            "build s",
            "agg/cluster/write s",
            "build/scan",
            "peak RSS MB",
            "build µs/event",
            "vs smallest",
        ],
        [
            [
                f"{r['users']:,}",
                f"{r['events']:,}",
                f"{r['events_per_s']:,.0f}",
                f"{r['baseline_s']:.1f}",
                f"{r['build_s']:.1f}",
                "/".join(f"{r['phases'][k]:.1f}" for k in ("aggregate", "cluster", "write")),
                f"{r['ratio']:.2f}x",
                f"{r['rss_mb']:,.0f}",
                f"{1e6 * r['build_s'] / r['events']:.2f}",
                f"{(r['build_s'] / r['events']) / (smallest['build_s'] / smallest['events']):.2f}",
            ]
            for r in rows
        ],
    )
    print(
        "GROUP BY scan first after the load / before / after the build (s; the baseline is the "
        "mean of before and after): "
        + "; ".join(
            f"{r['users']:,}: {a:.1f}/{b:.1f}/{c:.1f}"
            for r in rows
            for a, b, c in [r["baseline_runs"]]
        )
    )

    print("\nSeed project's joined query vs our per-source GROUP BY (uniform events per source):")
    seed_rows = []
    for users in [int(n) for n in args.seed_query_users.split(",")]:
        r = seed_query_comparison(users, 10, args.seed_query_timeout)
        seed = f"{r['seed_s']:.1f}" if r["seed_s"] is not None else f"> {r['timeout']} (stopped)"
        ratio = r["seed_s"] / r["ours_s"] if r["seed_s"] is not None else r["timeout"] / r["ours_s"]
        seed_rows.append(
            [
                f"{users:,}",
                "10",
                f"{r['ours_s']:.3f}",
                seed,
                f"{'>' if r['seed_s'] is None else ''}{ratio:,.0f}x",
            ]
        )
    print_table(["users", "events/source", "ours s", "seed query s", "seed/ours"], seed_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
