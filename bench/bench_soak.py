"""Soak: many concurrent conversations of many turns each over REST. Prints figures only.

Each of `--conversations` clients (default 8) holds ONE conversation of `--turns` messages
(default 1,000), cycling through data questions, follow-ups that need the context, paging
and small talk, all at once against our assistant (Rasa server + action server + MariaDB,
conversations in the SQL tracker store). Printed:
- errors (a non-200, an empty answer, an exception) and the stored user turns (SQL) against
  the turns sent;
- p50/p95 round trip per hundred turns of the conversations (flat = a long conversation
  costs what a short one does);
- RSS of each server when ready, after every hundred turns, and at the end.

    .venv/bin/python bench/bench_soak.py                       # 8 x 1,000
    .venv/bin/python bench/bench_soak.py --turns 200           # quicker
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

import requests  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from bench.common import cache_dir, print_table, scratch_database  # noqa: E402
from bot.channels import write_credentials  # noqa: E402
from bot.model import ensure_model  # noqa: E402
from bot.processes import Servers, free_port  # noqa: E402
from segmentation import db  # noqa: E402
from segmentation.build import build_segments  # noqa: E402
from segmentation.demo_data import generate_demo_data  # noqa: E402
from segmentation.ingest import ingest_csv  # noqa: E402
from segmentation.schema import ensure_schema  # noqa: E402

SCRIPT = (
    "how many users are highly engaged?",
    "and the moderate ones?",
    "what do low engagement users look like?",
    "top 5 highly engaged users",
    "show more",
    "which segment searches the most?",
    "compare low and highly engaged users",
    "hello",
    "when were the segments last updated?",
    "thanks",
)
USERS = 1000


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def prepare(url: str) -> None:
    """A complete segmentation run over USERS demo users."""
    engine = db.get_engine(url)
    ensure_schema(engine)
    for table, path in generate_demo_data(cache_dir() / f"demo-{USERS}-seed42", USERS).items():
        ingest_csv(engine, path, table)
    build_segments(engine)
    db.dispose_engines()


class Soak:
    """Runs the conversations and collects latencies per turn index."""

    def __init__(self, base: str, conversations: int, turns: int) -> None:
        self.base, self.conversations, self.turns = base, conversations, turns
        self.latency: Dict[int, List[float]] = {}
        self.errors: List[str] = []
        self.senders = [f"soak-{uuid.uuid4().hex[:10]}" for _ in range(conversations)]
        self.done = [0] * conversations
        self._lock = threading.Lock()

    def conversation(self, index: int) -> None:
        session = requests.Session()
        sender = self.senders[index]
        for turn in range(self.turns):
            message = SCRIPT[turn % len(SCRIPT)]
            started = time.perf_counter()
            problem: Optional[str] = None
            try:
                answer = session.post(
                    f"{self.base}/webhooks/rest/webhook",
                    json={"sender": sender, "message": message},
                    timeout=120,
                )
                if answer.status_code != 200 or not answer.json():
                    problem = f"{sender} turn {turn}: HTTP {answer.status_code} {answer.text[:80]}"
            except (requests.RequestException, ValueError) as exc:
                problem = f"{sender} turn {turn}: {exc}"
            elapsed = time.perf_counter() - started
            with self._lock:
                self.latency.setdefault(turn, []).append(elapsed)
                if problem:
                    self.errors.append(problem)
                self.done[index] = turn + 1

    def run(self, on_hundred) -> float:
        started = time.perf_counter()
        with ThreadPoolExecutor(self.conversations) as pool:
            futures = [pool.submit(self.conversation, i) for i in range(self.conversations)]
            reported = 0
            while not all(f.done() for f in futures):
                time.sleep(0.5)
                slowest = min(self.done)
                while slowest >= reported + 100:
                    reported += 100
                    on_hundred(reported)
            for future in futures:
                future.result()
        return time.perf_counter() - started


def stored_user_turns(url: str, senders: List[str]) -> int:
    engine = create_engine(url, future=True)
    with engine.connect() as conn:
        count = conn.execute(
            text("SELECT COUNT(*) FROM events WHERE type_name = 'user' AND sender_id LIKE 'soak-%'")
        ).scalar()
    engine.dispose()
    return int(count)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--turns", type=int, default=1000)
    args = parser.parse_args(argv)

    model = ensure_model(quiet=True)
    with scratch_database("si_bench_soak") as url:
        prepare(url)
        runtime = Path(tempfile.mkdtemp(prefix="si-soak-"))
        credentials = write_credentials(runtime, env={})  # our REST channel, no Slack
        with Servers(
            model,
            free_port(),
            free_port(),
            credentials,
            extra_env={"DATABASE_URL": url, "SI_RUNTIME_DIR": str(runtime)},
        ) as servers:
            pids = {p.name: p.process.pid for p in servers.processes}
            memory = [("ready", {name: rss_mb(pid) for name, pid in pids.items()})]
            soak = Soak(servers.rasa_url, args.conversations, args.turns)
            elapsed = soak.run(
                lambda n: memory.append(
                    (f"turn {n}", {name: rss_mb(pid) for name, pid in pids.items()})
                )
            )
            memory.append(("end", {name: rss_mb(pid) for name, pid in pids.items()}))
            stored = stored_user_turns(url, soak.senders)

    sent = args.conversations * args.turns
    print(
        f"\n{args.conversations} conversations x {args.turns:,} turns over REST "
        f"({sent:,} messages in {elapsed:.0f} s, {sent / elapsed:.1f} msgs/s)"
    )
    print(f"errors: {len(soak.errors)}; user turns stored: {stored:,} of {sent:,}")
    for problem in soak.errors[:10]:
        print("  " + problem)
    rows = []
    for start in range(0, args.turns, 100):
        times = sorted(t for turn in range(start, start + 100) for t in soak.latency.get(turn, []))
        if times:
            rows.append(
                [
                    f"{start}-{min(start + 100, args.turns) - 1}",
                    f"{1000 * statistics.median(times):.0f}",
                    f"{1000 * times[int(0.95 * (len(times) - 1))]:.0f}",
                    str(len(times)),
                ]
            )
    print("\nRound trip per hundred turns of each conversation:")
    print_table(["turns", "p50 ms", "p95 ms", "messages"], rows)
    print("\nRSS (MB):")
    names = sorted(pids)
    print_table(
        ["when", *names], [[when, *(f"{mb[name]:.0f}" for name in names)] for when, mb in memory]
    )
    return 1 if soak.errors else 0


if __name__ == "__main__":
    sys.exit(main())
