"""Ingest speed and memory: generate demo data of a given size, load it, print the figures.

    .venv/bin/python bench/bench_ingest.py --users 100000
    .venv/bin/python bench/bench_ingest.py --users 1000000 --database-url mysql+pymysql://...

Without --database-url it creates a scratch MariaDB database and drops it at the end. Each
file is loaded in a fresh process, so "peak RSS" is that load's own high-water mark. Prints
figures only; never asserts.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from segmentation import db  # noqa: E402
from segmentation.demo_data import generate_demo_data  # noqa: E402

SERVER_URL = "mysql+pymysql://root@127.0.0.1:3306"
TABLES = ("clickstream", "search_queries", "article_views", "users")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000, help="demo users (default 100000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--database-url",
        help=f"load here (default: a scratch database on {SERVER_URL}, dropped afterwards)",
    )
    parser.add_argument("--data-dir", type=Path, help="reuse/keep the generated CSVs here")
    parser.add_argument("--block-mb", type=float, default=None, help="CSV block size in MB")
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=TABLES)
    return parser.parse_args(argv)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate(out_dir: str, users: int, seed: int, queue) -> None:
    started = time.perf_counter()
    generate_demo_data(out_dir, users, seed=seed)
    queue.put({"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()})


def _ingest(url: str, path: str, table: str, block_mb: Optional[float], queue) -> None:
    from segmentation.ingest import ingest_csv
    from segmentation.progress import set_quiet
    from segmentation.schema import ensure_schema

    set_quiet(True)
    engine = db.get_engine(url)
    ensure_schema(engine)
    options = {"block_bytes": int(block_mb * 2**20)} if block_mb else {}
    baseline = peak_rss_mb()
    cpu = time.process_time()
    result = ingest_csv(engine, path, table, **options)
    queue.put(
        {
            "rows": result.rows,
            "seconds": result.seconds,
            "client_cpu": time.process_time() - cpu,
            "peak_rss_mb": peak_rss_mb(),
            "baseline_rss_mb": baseline,
        }
    )


def run_in_child(target, *args) -> Dict[str, float]:
    """Run `target(*args, queue)` in a fresh process; return what it put on the queue."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"{target.__name__} failed (exit code {process.exitcode})")
    return queue.get()


def server_cpu_seconds() -> Optional[float]:
    """CPU time used so far by a local mariadbd (None when there is none to see)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(mariadbd)" in text or "(mysqld)" in text:
            fields = text.rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


def scratch_database() -> str:
    name = f"si_bench_{uuid.uuid4().hex[:8]}"
    server = create_engine(SERVER_URL + "/", future=True)
    with server.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    server.dispose()
    return f"{SERVER_URL}/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    server = create_engine(SERVER_URL + "/", future=True)
    with server.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    server.dispose()


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    url = args.database_url or scratch_database()
    temporary = None if args.data_dir else tempfile.TemporaryDirectory(prefix="si_bench_")
    data_dir = args.data_dir or Path(temporary.name)
    try:
        if not (data_dir / "users.csv").exists():
            made = run_in_child(_generate, str(data_dir), args.users, args.seed)
            print(
                f"generated {args.users:,} users in {made['seconds']:.1f} s "
                f"(peak RSS {made['peak_rss_mb']:.0f} MB) in {data_dir}"
            )
        print(f"database: {db.describe(make_url(url))}")
        print(
            f"{'table':<15} {'rows':>11} {'MB':>6} {'seconds':>8} {'rows/s':>9} "
            f"{'client CPU':>10} {'server CPU':>10} {'peak RSS':>9}"
        )
        events = seconds = 0.0
        for table in args.tables:
            path = data_dir / f"{table}.csv"
            server_before = server_cpu_seconds()
            got = run_in_child(_ingest, url, str(path), table, args.block_mb)
            server_after = server_cpu_seconds()
            server = "n/a"
            if server_before is not None and server_after is not None:
                server = f"{server_after - server_before:.1f} s"
            print(
                f"{table:<15} {got['rows']:>11,} {path.stat().st_size / 2**20:>6.0f} "
                f"{got['seconds']:>8.1f} {got['rows'] / got['seconds']:>9,.0f} "
                f"{got['client_cpu']:>8.1f} s {server:>10} {got['peak_rss_mb']:>6.0f} MB"
            )
            if table != "users":
                events += got["rows"]
                seconds += got["seconds"]
        if seconds:
            print(
                f"{'all events':<15} {events:>11,.0f} {'':>6} {seconds:>8.1f} {events / seconds:>9,.0f}"
            )
        print(
            f"load average during the run: {os.getloadavg()[0]:.1f} (2 cores: above 2 is contention)"
        )
    finally:
        if not args.database_url:
            drop_database(url)
        if temporary is not None:
            temporary.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
