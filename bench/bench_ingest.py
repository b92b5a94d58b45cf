"""Ingest speed and memory: generate demo data of a given size, load it, print the figures.

    .venv/bin/python bench/bench_ingest.py --users 100000
    .venv/bin/python bench/bench_ingest.py --users 1000000          # about 30 million events
    .venv/bin/python bench/bench_ingest.py --database-url mysql+pymysql://user@host/db

Generated CSVs are cached outside the clone (see bench/common.py). Without --database-url the
data goes into a scratch MariaDB database that is dropped afterwards. Each file is loaded in a
fresh process, so "peak RSS" is that load's own high-water mark; "client CPU" is the loading
process's CPU time and "server CPU" the local mariadbd's (which counts every client of that
server, not only this one). Prints figures only; never asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from sqlalchemy.engine import make_url  # noqa: E402

from bench.common import cache_dir, print_table, scratch_database  # noqa: E402
from segmentation import db  # noqa: E402
from segmentation.demo_data import generate_demo_data  # noqa: E402

TABLES = ("clickstream", "search_queries", "article_views", "users")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000, help="demo users (default 100000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--database-url", help="load here (default: a scratch MariaDB database)")
    parser.add_argument("--data-dir", type=Path, help="where the CSVs are (generated if missing)")
    parser.add_argument("--block-mb", type=float, help="CSV block size in MB (default: ingest's)")
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
    cpu = time.process_time()
    result = ingest_csv(engine, path, table, **options)
    queue.put(
        {
            "rows": result.rows,
            "seconds": result.seconds,
            "client_cpu": time.process_time() - cpu,
            "peak_rss_mb": peak_rss_mb(),
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


@contextlib.contextmanager
def target_database(url: Optional[str]) -> Iterator[str]:
    if url:
        yield url
    else:
        with scratch_database("si_bench_ingest") as scratch:
            yield scratch


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    data_dir = args.data_dir or cache_dir() / f"ingest-{args.users}-users-seed{args.seed}"
    if not all((data_dir / f"{table}.csv").exists() for table in TABLES):
        made = run_in_child(_generate, str(data_dir), args.users, args.seed)
        print(
            f"generated {args.users:,} users in {made['seconds']:.1f} s "
            f"(peak RSS {made['peak_rss_mb']:.0f} MB) in {data_dir}"
        )
    rows: List[List[str]] = []
    events = seconds = 0.0
    with target_database(args.database_url) as url:
        print(f"database: {db.describe(make_url(url))}")
        for table in args.tables:
            path = data_dir / f"{table}.csv"
            server_before = server_cpu_seconds()
            got = run_in_child(_ingest, url, str(path), table, args.block_mb)
            server_after = server_cpu_seconds()
            server = "n/a"
            if server_before is not None and server_after is not None:
                server = f"{server_after - server_before:.1f} s"
            rows.append(
                [
                    table,
                    f"{got['rows']:,}",
                    f"{path.stat().st_size / 2**20:,.0f}",
                    f"{got['seconds']:.1f}",
                    f"{got['rows'] / got['seconds']:,.0f}",
                    f"{got['client_cpu']:.1f} s",
                    server,
                    f"{got['peak_rss_mb']:.0f} MB",
                ]
            )
            if table != "users":
                events += got["rows"]
                seconds += got["seconds"]
    if seconds:
        rows.append(
            ["all events", f"{events:,.0f}", "", f"{seconds:.1f}", f"{events / seconds:,.0f}"]
        )
        rows[-1] += ["", "", ""]
    headers = ["table", "rows", "MB", "seconds", "rows/s", "client CPU", "server CPU", "peak RSS"]
    print_table(headers, rows)
    load = os.getloadavg()[0]
    cores = os.cpu_count()
    verdict = "other work competed" if load > cores else "no contention"
    print(f"load average {load:.1f} on {cores} cores ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
