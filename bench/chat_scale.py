"""`bench/bench_chat.py --scale`: 8 concurrent conversations on 1 Rasa server, on 1 Rasa server
with the shared stores (Redis lock store, the tracker store checking its memory copy against
SQL: their overhead alone), and on 2 behind HAProxy with the shared stores.

One machine, so the point is correctness and the overhead of the shared stores, not more
throughput. Prints messages/s, p50/p95 round trip and the 2-server/1-server ratios, and checks
that every conversation's messages were stored once, in order, each followed by its answer.
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import requests
from sqlalchemy import create_engine, text

from bench.common import print_table
from bot.processes import Servers, free_port

QUESTIONS = (
    "how many users are highly engaged?",
    "tell me about the segments",
    "how many users are low engagement?",
    "what do moderately engaged users look like?",
    "top 5 highly engaged users",
    "show more",
    "how many users are moderately engaged?",
)


def converse(base: str, sender: str, messages: Sequence[str]) -> Tuple[List[float], List[str]]:
    """One conversation, message after message: (round trips, problems with the replies)."""
    latencies, problems = [], []
    for message in messages:
        started = time.perf_counter()
        response = requests.post(
            f"{base}/webhooks/rest/webhook",
            json={"sender": sender, "message": message},
            timeout=120,
        )
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200 or not response.json():
            problems.append(f"{sender}: {message!r} -> {response.status_code} {response.text[:80]}")
    return latencies, problems


def stored_in_order(database_url: str, sender: str, messages: Sequence[str]) -> List[str]:
    """Problems with `sender`'s stored turns: every message once, in order, each answered."""
    engine = create_engine(database_url, future=True)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT type_name, data FROM events WHERE sender_id = :s "
                "AND type_name IN ('user', 'bot') ORDER BY id"
            ),
            {"s": sender},
        ).all()
    engine.dispose()
    turns: List[List[str]] = []
    for row in rows:
        if row.type_name == "user":
            turns.append([json.loads(row.data).get("text")])
        elif turns:
            turns[-1].append("bot")
    problems = []
    if [turn[0] for turn in turns] != list(messages):
        problems.append(f"{sender}: stored messages differ from those sent")
    if any(len(turn) < 2 for turn in turns):
        problems.append(f"{sender}: a message without an answer")
    return problems


def percentile(ordered: Sequence[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * (len(ordered) - 1) + 0.5))]


SETUPS = (("1", 1, False), ("1 + shared stores", 1, True), ("2 + HAProxy", 2, True))


def measure(
    model: Path, database_url: str, setup: Tuple[str, int, bool], conversations: int, rounds: int
) -> Dict[str, object]:
    """Figures for `conversations` concurrent conversations of `rounds` x QUESTIONS on one of
    SETUPS: (label, Rasa servers, shared stores)."""
    label, rasa_servers, shared = setup
    messages = list(QUESTIONS) * rounds
    env = {"DATABASE_URL": database_url}
    if shared and rasa_servers == 1:  # what several servers use, on one
        env.update(SI_RASA_SERVERS="2", SI_LOCK_STORE="bot.lock_store.SharedRedisLockStore")
    with Servers(
        model, free_port(), free_port(), extra_env=env, rasa_servers=rasa_servers
    ) as servers:
        base = servers.rasa_url
        converse(base, f"warm-{uuid.uuid4().hex}", QUESTIONS)  # model graph, pools
        senders = [f"scale-{rasa_servers}-{uuid.uuid4().hex[:12]}" for _ in range(conversations)]
        started = time.perf_counter()
        with ThreadPoolExecutor(conversations) as pool:
            results = list(pool.map(lambda s: converse(base, s, messages), senders))
        elapsed = time.perf_counter() - started
        ready = servers.ready_seconds["rasa"]
    latencies = sorted(t for part, _ in results for t in part)
    problems = [p for _, found in results for p in found]
    for sender in senders:
        problems += stored_in_order(database_url, sender, messages)
    return {
        "servers": label,
        "n": len(latencies),
        "per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * percentile(latencies, 0.5),
        "p95_ms": 1000 * percentile(latencies, 0.95),
        "ready_s": ready,
        "problems": problems,
    }


def report(results: List[Dict[str, object]]) -> int:
    """Print the table and the ratios; 1 when any reply was missing or out of order."""
    rows = [
        [
            str(r["servers"]),
            f"{r['p50_ms']:.0f}",
            f"{r['p95_ms']:.0f}",
            f"{r['per_s']:.2f}",
            str(r["n"]),
            str(len(r["problems"])),
        ]
        for r in results
    ]
    print("\n8 concurrent conversations (REST, loopback, one machine):")
    print_table(["Rasa servers", "p50 ms", "p95 ms", "msgs/s", "messages", "problems"], rows)
    one = results[0]
    print()
    for other in results[1:]:
        print(
            f"{other['servers']} / 1: msgs/s {other['per_s'] / one['per_s']:.2f}x, "
            f"p50 {other['p50_ms'] / one['p50_ms']:.2f}x, "
            f"p95 {other['p95_ms'] / one['p95_ms']:.2f}x"
        )
    failed = [p for r in results for p in r["problems"]]
    for problem in failed[:20]:
        print(f"PROBLEM: {problem}")
    print("Every reply arrived, in order." if not failed else f"{len(failed)} problems.")
    return 1 if failed else 0
