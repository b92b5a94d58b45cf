"""Chat latency over the REST webhook, training time and server start-up. Prints figures only.

Measured in one run, on loopback:
- p50/p95 round trip and messages/s for 1 and 8 concurrent clients (each a series of
  7-message conversations), at 1,000 and at 1,000,000 users (our assistant: Rasa server, action
  server, MariaDB for the segments and Rasa's SQL tracker store);
- the same single-stream figures for a stock `rasa init` assistant (no custom actions), served
  at the same time: the two alternate conversation by conversation, so drift in the machine's
  speed hits both alike;
- user lookups at 1M against 1k; `rasa train` time; seconds until each server is ready;
- questions that combine parts (issue 8): a count with several filters, a filtered mean and
  "which segment has the most X", each at 1M against 1k users (answered from the run's cells,
  so their cost should not grow with the number of users).

    .venv/bin/python bench/bench_chat.py                    # 1k and 1M users
    .venv/bin/python bench/bench_chat.py --sizes 1000       # quick
    .venv/bin/python bench/bench_chat.py --scale            # 8 conversations, 1 vs 2 servers

`--scale` (bench/chat_scale.py): 8 concurrent conversations on 1 Rasa server, on 1 with the
shared stores, and on 2 behind HAProxy with the shared stores (Redis lock store, checked
tracker cache), at 1,000 users; checks every reply arrived in order.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

import requests  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from bench.common import SERVER_URL, cache_dir, print_table  # noqa: E402
from bot.environment import rasa_command, rasa_env  # noqa: E402
from bot.model import ensure_model, train_command  # noqa: E402
from bot.processes import ManagedProcess, Servers, free_port, wait_until_ready  # noqa: E402
from segmentation import db  # noqa: E402
from segmentation.build import build_segments  # noqa: E402
from segmentation.demo_data import generate_demo_data  # noqa: E402
from segmentation.errors import NoDataError  # noqa: E402
from segmentation.ingest import ingest_csv  # noqa: E402
from segmentation.queries import SegmentQueries  # noqa: E402
from segmentation.schema import ensure_schema  # noqa: E402

QUESTIONS = (
    "how many users are highly engaged?",
    "tell me about the segments",
    "what do moderately engaged users look like?",
    "compare low and highly engaged users",
    "which segment searches the most?",
    "top 10 highly engaged users",
    "when were the segments last updated?",
)
STOCK_QUESTIONS = ("hello", "I am sad", "yes", "are you a bot?", "goodbye", "great", "hi")
# Questions that combine a segment, filters and a measure, a few variants of each kind.
COMBINED = {
    "filtered count": (
        "how many premium iOS users in Germany are highly engaged?",
        "how many free Android users in Brazil are in the moderate segment?",
        "how many basic plan users on the web in Japan are low engagement?",
        "how many highly engaged users in India are on iOS?",
    ),
    "filtered mean": (
        "average searches of low engagement users in Brazil",
        "mean clicks of highly engaged users on Android",
        "average sessions of moderate users on the premium plan",
        "average article views of highly engaged users in France",
    ),
    "which segment most": (
        "which segment has the most clicks?",
        "which segment has the fewest sessions?",
        "which segment searches the most in Germany?",
        "which segment has the most article views on iOS?",
    ),
}


def prepared_database(users: int) -> str:
    """A MariaDB database with a complete run over `users` demo users (kept between runs)."""
    url = f"{SERVER_URL}/si_bench_chat_{users}"
    db.create_database_if_missing(url)
    engine = db.get_engine(url)
    ensure_schema(engine)
    try:
        run = SegmentQueries(engine=engine).current_run()
        if run.n_users == users and run.params.get("cells"):
            return url
    except NoDataError:
        pass
    print(f"... preparing {users:,} users (kept for the next run)", file=sys.stderr, flush=True)
    files = generate_demo_data(cache_dir() / f"demo-{users}-seed42", users)
    for table, path in files.items():
        ingest_csv(engine, path, table)  # a file loaded before is skipped
    build_segments(engine)
    return url


def round_trip(base: str, sender: str, message: str) -> float:
    started = time.perf_counter()
    response = requests.post(
        f"{base}/webhooks/rest/webhook", json={"sender": sender, "message": message}, timeout=60
    )
    response.raise_for_status()
    assert response.json(), f"no answer to {message!r}"
    return time.perf_counter() - started


CONVERSATION = 7  # messages per conversation (one sender), then a new person starts


def stream(base: str, messages: Sequence[str]) -> List[float]:
    """One client sending `messages` in order, as conversations of CONVERSATION messages."""
    latencies = []
    for start in range(0, len(messages), CONVERSATION):
        sender = uuid.uuid4().hex
        latencies += [round_trip(base, sender, m) for m in messages[start : start + CONVERSATION]]
    return latencies


def figures(latencies: Sequence[float], elapsed: float) -> Dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p95_ms": 1000 * ordered[int(0.95 * (len(ordered) - 1))],
        "per_s": len(ordered) / elapsed,
        "n": len(ordered),
    }


def load_figures(base: str, messages: Sequence[str], streams: int) -> Dict[str, float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        latencies = [
            t for part in pool.map(lambda _: stream(base, messages), range(streams)) for t in part
        ]
    return figures(latencies, time.perf_counter() - started)


def interleaved_figures(
    ours: str, stock: str, repeats: int
) -> Tuple[Dict[str, float], Dict[str, float]]:
    """Single-stream figures for both assistants, one conversation of each in turn, so that
    both see the same machine (frequency, other load) and the ratio is fair."""
    ours_latencies: List[float] = []
    stock_latencies: List[float] = []
    for _ in range(repeats):
        ours_latencies += stream(ours, QUESTIONS)
        stock_latencies += stream(stock, STOCK_QUESTIONS)
    # Each client waits for every answer, so its busy time is the sum of its round trips.
    return (
        figures(ours_latencies, sum(ours_latencies)),
        figures(stock_latencies, sum(stock_latencies)),
    )


def user_ids(url: str, count: int, seed: int = 1) -> List[str]:
    """`count` random user ids of the current run."""
    engine = create_engine(url, future=True)
    with engine.connect() as conn:
        run_id = conn.execute(
            text("SELECT MAX(id) FROM segmentation_runs WHERE status = 'complete'")
        ).scalar()
        ids = (
            conn.execute(text("SELECT user_id FROM user_segments WHERE run_id = :r"), {"r": run_id})
            .scalars()
            .all()
        )
    engine.dispose()
    return random.Random(seed).sample(list(ids), count)


def measure_ours(users: int, model: Path, repeats: int, stock: str) -> Dict[str, object]:
    url = prepared_database(users)
    messages = list(QUESTIONS) * repeats
    lookups = [f"which segment is user {uid} in?" for uid in user_ids(url, 10 * repeats)]
    with Servers(model, free_port(), free_port(), extra_env={"DATABASE_URL": url}) as servers:
        base = servers.rasa_url
        stream(base, QUESTIONS)  # warm-up: first answers load the model graph and the pool
        single, stock_single = interleaved_figures(base, stock, repeats)
        return {
            "users": users,
            "ready_s": servers.ready_seconds,
            "single": single,
            "stock": stock_single,
            "eight": load_figures(base, messages, 8),
            "lookup": load_figures(base, lookups, 1),
            **{
                kind: load_figures(base, list(variants) * repeats, 1)
                for kind, variants in COMBINED.items()
            },
        }


@contextlib.contextmanager
def stock_server() -> Iterator[Tuple[str, float]]:
    """A stock `rasa init` assistant, trained and served the same way: (its URL, ready s)."""
    folder = Path(tempfile.mkdtemp(prefix="rasa-init-"))
    try:
        subprocess.run(
            [*rasa_command(), "init", "--no-prompt", "--init-dir", str(folder)],
            cwd=folder,
            env=rasa_env(),
            check=True,
            capture_output=True,
        )
        model = next((folder / "models").glob("*.tar.gz"))
        port = free_port()
        server = ManagedProcess(
            "stock-rasa",
            [
                *rasa_command(),
                "run",
                "--enable-api",
                "--interface",
                "127.0.0.1",
                "--port",
                str(port),
                "--model",
                str(model),
            ],
            rasa_env(),
            folder / "logs",
            cwd=folder,  # the stock project's own (empty) endpoints
        )
        try:
            ready = wait_until_ready(f"http://127.0.0.1:{port}/status", server, 300)
            base = f"http://127.0.0.1:{port}"
            stream(base, STOCK_QUESTIONS)  # warm-up
            yield base, ready
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def train_seconds() -> float:
    """`rasa train` of our assistant from scratch, into a temporary folder."""
    out = Path(tempfile.mkdtemp(prefix="train-"))
    started = time.perf_counter()
    subprocess.run(
        [*train_command(out), "--force"],
        cwd=PROJECT,
        env=rasa_env(),
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return seconds


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,1000000", help="user counts (--scale: first)")
    parser.add_argument("--repeats", type=int, default=20, help="passes over the question list")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--scale", action="store_true", help="1 vs 2 Rasa servers, 8 clients")
    parser.add_argument("--rounds", type=int, default=6, help="--scale: question lists each")
    args = parser.parse_args(argv)

    model = ensure_model(quiet=True)
    if args.scale:
        from bench import chat_scale

        url = prepared_database(int(args.sizes.split(",")[0]))
        results = [chat_scale.measure(model, url, s, 8, args.rounds) for s in chat_scale.SETUPS]
        return chat_scale.report(results)
    with stock_server() as (stock_url, stock_ready):
        ours = [measure_ours(int(n), model, args.repeats, stock_url) for n in args.sizes.split(",")]
    rows = []
    for result in ours:
        for label, key in (
            ("1 stream", "single"),
            ("stock rasa init, 1 stream", "stock"),
            ("8 streams", "eight"),
            ("user lookup", "lookup"),
            *((kind, kind) for kind in COMBINED),
        ):
            f = result[key]
            rows.append(
                [
                    f"{result['users']:,}",
                    label,
                    f"{f['p50_ms']:.0f}",
                    f"{f['p95_ms']:.0f}",
                    f"{f['per_s']:.1f}",
                    str(f["n"]),
                ]
            )
    print("\nREST round trip (loopback; ours and stock alternate conversation by conversation):")
    print_table(["users", "load", "p50 ms", "p95 ms", "msgs/s", "messages"], rows)
    print("\nRatios:")
    for result in ours:
        print(
            f"  p50 single stream at {result['users']:,} users / stock rasa init p50 "
            f"(same minutes): {result['single']['p50_ms'] / result['stock']['p50_ms']:.2f}x"
        )
    if len(ours) > 1:
        print(
            f"  user lookup p50 at {ours[-1]['users']:,} / at {ours[0]['users']:,}: "
            f"{ours[-1]['lookup']['p50_ms'] / ours[0]['lookup']['p50_ms']:.2f}x"
        )
        for kind in COMBINED:
            print(
                f"  {kind} p50 at {ours[-1]['users']:,} / at {ours[0]['users']:,}: "
                f"{ours[-1][kind]['p50_ms'] / ours[0][kind]['p50_ms']:.2f}x"
            )
    ready = "; ".join(
        f"{r['users']:,} users: rasa {r['ready_s']['rasa']:.1f}, actions {r['ready_s']['actions']:.1f}"
        for r in ours
    )
    print(f"\nServer ready (s): {ready}; stock rasa {stock_ready:.1f}")
    if not args.skip_train:
        print(f"rasa train (from scratch): {train_seconds():.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
