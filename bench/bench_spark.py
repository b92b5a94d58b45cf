"""The Spark engine next to the MariaDB path, on the same events. Prints figures only.

Generates demo data (cached), loads it into a MariaDB database kept between runs
(si_bench_spark_<users>), then builds the same run twice in fresh processes: once with the
default engine (MariaDB aggregates, scikit-learn fits) and once with `--engine spark` on
`--master` (default local[2]). Prints wall time, peak RSS of the Python process, how the Spark
time divides (read, aggregate, cluster, assign, write), and whether the two runs agree
(identical per-user features on a sample, segment names in the same order, sizes).

    .venv/bin/python bench/bench_spark.py                      # 1M users (~30M events)
    .venv/bin/python bench/bench_spark.py --users 20000        # quicker
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from sqlalchemy import create_engine, text  # noqa: E402

from bench.common import SERVER_URL, cache_dir, print_table  # noqa: E402
from segmentation import db  # noqa: E402
from segmentation.demo import load_demo  # noqa: E402
from segmentation.schema import ensure_schema  # noqa: E402

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {project!r})
from segmentation import db
from segmentation.build import build_segments
from segmentation.engine import make_engine
compute = make_engine({engine!r}, **{options!r})
started = time.perf_counter()
result = build_segments(db.get_engine({url!r}), compute=compute)
wall = time.perf_counter() - started
getattr(compute, "stop", lambda: None)()
print(json.dumps({{"wall": wall, "phases": result.seconds, "run": result.run_id,
    "users": result.n_users, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def loaded_database(users: int) -> str:
    """si_bench_spark_<users> with the demo events loaded (reused when already complete)."""
    name = f"si_bench_spark_{users}"
    server = create_engine(SERVER_URL + "/", future=True)
    with server.connect() as conn:
        conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4"))
    server.dispose()
    url = f"{SERVER_URL}/{name}"
    engine = db.get_engine(url)
    ensure_schema(engine)
    # ingest skips a file it has already loaded
    load_demo(
        engine, users, 42, cache_dir() / f"spark-{users}", say=lambda s: print(s, file=sys.stderr)
    )
    return url


def build(url: str, engine: str, options: dict) -> Dict:
    code = CHILD.format(project=str(PROJECT), url=url, engine=engine, options=options)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{engine} build failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def agreement(url: str, first: int, second: int, sample: int = 20000) -> Dict:
    with db.get_engine(url).connect() as conn:
        sizes = {
            run: conn.execute(
                text(
                    "SELECT segment, size FROM segment_profiles WHERE run_id = :r ORDER BY `rank`"
                ),
                {"r": run},
            ).all()
            for run in (first, second)
        }
        pairs = conn.execute(
            text(
                "SELECT a.features, b.features FROM user_segments a JOIN user_segments b "
                "ON a.user_id = b.user_id AND b.run_id = :b WHERE a.run_id = :a LIMIT :n"
            ),
            {"a": first, "b": second, "n": sample},
        ).all()
    differ = 0
    for left, right in pairs:
        left, right = (json.loads(v) if isinstance(v, str) else v for v in (left, right))
        differ += any(abs(left[k] - right[k]) > 1e-6 * max(1.0, abs(left[k])) for k in left)
    total = sum(size for _, size in sizes[first])
    return {
        "same_names_in_order": [s for s, _ in sizes[first]] == [s for s, _ in sizes[second]],
        "sizes": {s: (a, b) for (s, a), (_, b) in zip(sizes[first], sizes[second])},
        "max_size_gap_pct": max(abs(a - b) for (_, a), (_, b) in zip(*sizes.values()))
        / total
        * 100,
        "users_compared": len(pairs),
        "users_with_different_features": differ,
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args(argv)
    url = loaded_database(args.users)
    with db.get_engine(url).connect() as conn:
        events = sum(
            conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar()
            for t in ("clickstream", "search_queries", "article_views")
        )
    mariadb = build(url, "scikit-learn", {})
    spark = build(url, "spark", {"master": args.master, "partitions": args.partitions})
    rows = [
        ("MariaDB + scikit-learn", mariadb),
        (f"Spark {args.master}", spark),
    ]
    print(f"{args.users:,} users, {events:,} events")
    print_table(
        ("engine", "wall s", "peak RSS MB (Python)", "phases (s)"),
        [
            (
                name,
                f"{r['wall']:.1f}",
                f"{r['rss_mb']:.0f}",
                ", ".join(f"{k} {v:.1f}" for k, v in r["phases"].items()),
            )
            for name, r in rows
        ],
    )
    print(f"Spark / MariaDB wall time: {spark['wall'] / mariadb['wall']:.2f}x")
    print(json.dumps(agreement(url, mariadb["run"], spark["run"]), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
