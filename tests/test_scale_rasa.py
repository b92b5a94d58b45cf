"""Several Rasa servers (`python -m bot serve --rasa-servers 2`): two real Rasa servers behind
HAProxy, one action server, the Redis lock store and the SQL tracker store on MariaDB.

- a conversation whose turns alternate between the servers keeps its follow-up context;
- concurrent messages of one sender, sent to both servers at once, are all answered, one turn
  at a time, each with its own answer;
- a server killed mid-conversation: the balancer sends the next turn to the other one, which
  continues the conversation; the supervisor restarts the killed one, which continues it too;
- Redis stops answering (the servers reach it through a proxy the test can pause): a message
  gets a note that it was not taken, within the time limit, and the conversation goes on once
  Redis is back; `serve` with a Redis that never answers stops with a clear error.

Expected answers come from SQL written here, and the stored turns from the events table.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import uuid
from typing import Dict, List

import pytest
import requests

from tests.servers import ServeProcess, own_database, seed

PAGE = 5


@pytest.fixture(scope="module")
def cluster(mariadb_database, redis_url, haproxy, tmp_path_factory):
    """`python -m bot serve --rasa-servers 2` on a seeded database of its own."""
    from bot.model import ensure_model

    ensure_model(quiet=True)
    from redis.connection import parse_url

    from tests.tcp_proxy import TcpProxy

    runtime = tmp_path_factory.mktemp("cluster")
    tag = f"cluster-{uuid.uuid4().hex}"
    target = parse_url(redis_url)
    redis_proxy = TcpProxy((target.get("host", "127.0.0.1"), int(target.get("port", 6379))))
    with own_database(mariadb_database, "scale") as database_url:
        seed(database_url)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "RASA_PORT": "0",
            "ACTION_PORT": "0",
            "REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/{target.get('db', 0)}",
            "SI_RUNTIME_DIR": str(runtime),
            "SI_TEST_TAG": tag,
            "SI_RESTART_DELAYS": "1",
            "SLACK_BOT_TOKEN": "",
            "SLACK_SIGNING_SECRET": "",
            "SLACK_APP_TOKEN": "",
        }
        served = ServeProcess(env, ["--rasa-servers", "2"])
        try:
            served.wait_for("Press Ctrl-C to stop.", timeout=600)
            banner = "".join(served.seen)
            served.balancer = re.search(r"Balancer: +(http://\S+)", banner).group(1)
            served.backends = dict(re.findall(r"(rasa-server-\d): (http://\S+)", banner))
            served.database_url = database_url
            served.health = runtime / "health.json"
            served.redis_proxy = redis_proxy
            yield served
        finally:
            redis_proxy.close()
            served.stop(90)


def sql(cluster, query: str, **params) -> List:
    from tests.servers import run_sql

    return run_sql(cluster.database_url, query, **params)


def say(url: str, sender: str, text: str) -> str:
    """The reply texts of one REST message to `url` (a Rasa server or the balancer)."""
    answer = requests.post(
        f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=180
    )
    assert answer.status_code == 200, answer.text
    return "\n".join(r.get("text", "") for r in answer.json())


def highly_engaged(cluster) -> List[str]:
    """The Highly Engaged users in the order the assistant pages them (plain SQL)."""
    return [
        row.user_id
        for row in sql(
            cluster,
            "SELECT user_id FROM user_segments WHERE segment = 'Highly Engaged' AND run_id = "
            "(SELECT MAX(id) FROM segmentation_runs WHERE status = 'complete') "
            "ORDER BY score DESC, user_id DESC",
        )
    ]


def listed(reply: str) -> List[str]:
    return re.findall(r"\n(h\d{3}) ", reply)


def user_turns(cluster, sender: str) -> List[str]:
    """The user messages stored for `sender`, in order."""
    rows = sql(
        cluster,
        "SELECT data FROM events WHERE sender_id = :s AND type_name = 'user' ORDER BY id",
        s=sender,
    )
    return [json.loads(row.data)["text"] for row in rows]


def test_the_banner_names_the_balancer_and_both_servers(cluster):
    assert set(cluster.backends) == {"rasa-server-1", "rasa-server-2"}
    assert len({cluster.balancer, *cluster.backends.values()}) == 3
    for url in (cluster.balancer, *cluster.backends.values()):
        assert url.startswith("http://127.0.0.1:") and requests.get(url + "/", timeout=30).ok
    report = health(cluster, lambda r: all((r["conversation_storage"] or {"": None}).values()))
    assert set(report["servers"]) == {"action-server", "rasa-server-1", "rasa-server-2", "balancer"}
    storage = report["conversation_storage"]
    assert set(storage) == {"rasa-server-1", "rasa-server-2"}
    assert all(s["held_turns"] == 0 for s in storage.values()), storage


def health(cluster, ready, timeout: float = 60.0) -> dict:
    """health.json once `ready(report)` (the supervisor rewrites it every 2 s)."""
    deadline = time.monotonic() + timeout
    while True:
        report = json.loads(cluster.health.read_text())
        if ready(report) or time.monotonic() > deadline:
            return report
        time.sleep(0.5)


def test_turns_alternating_between_servers_keep_the_follow_up_context(cluster):
    ordered = highly_engaged(cluster)
    one, two = cluster.backends["rasa-server-1"], cluster.backends["rasa-server-2"]
    sender = f"alt-{uuid.uuid4().hex[:10]}"
    first = say(one, sender, "top 5 highly engaged users")
    assert f"*Highly Engaged* users: 1–5 of {len(ordered)}" in first
    assert listed(first) == ordered[:PAGE]
    # Each "show more" needs the page the other server showed last.
    for page, url in enumerate((two, one, two), start=1):
        assert listed(say(url, sender, "show more")) == ordered[page * PAGE : (page + 1) * PAGE]
    assert user_turns(cluster, sender) == ["top 5 highly engaged users"] + ["show more"] * 3


SEGMENT_QUESTIONS = {
    "Low Engagement": "how many users are low engagement?",
    "Moderate Engagement": "how many users are moderately engaged?",
    "Highly Engaged": "how many users are highly engaged?",
}


def test_concurrent_messages_of_one_sender_are_answered_one_turn_at_a_time(cluster):
    sizes: Dict[str, int] = {
        row.segment: int(row.size)
        for row in sql(
            cluster,
            "SELECT segment, size FROM segment_profiles WHERE run_id = "
            "(SELECT MAX(id) FROM segmentation_runs WHERE status = 'complete')",
        )
    }
    urls = [cluster.backends["rasa-server-1"], cluster.backends["rasa-server-2"]]
    sender = f"burst-{uuid.uuid4().hex[:10]}"
    messages = [(segment, question) for segment, question in SEGMENT_QUESTIONS.items()] * 2
    replies: Dict[int, str] = {}
    start = threading.Barrier(len(messages))

    def send(index: int) -> None:
        segment, question = messages[index]
        start.wait()
        replies[index] = say(urls[index % 2], sender, question)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(messages))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert sorted(replies) == list(range(len(messages)))  # every message answered
    for index, (segment, _) in enumerate(messages):  # each with its own answer
        assert f"*{segment}* has *{sizes[segment]} users*" in replies[index]
    # Stored one turn at a time: each user message followed by its own answer, never by
    # another message's, and every message stored once.
    rows = sql(
        cluster,
        "SELECT type_name, data FROM events WHERE sender_id = :s "
        "AND type_name IN ('user', 'bot') ORDER BY id",
        s=sender,
    )
    turns = []
    for row in rows:
        said = json.loads(row.data).get("text") or ""
        if row.type_name == "user":
            turns.append([said])
        else:
            turns[-1].append(said)
    assert sorted(turn[0] for turn in turns) == sorted(q for _, q in messages)
    by_question = {question: segment for segment, question in SEGMENT_QUESTIONS.items()}
    for question, *answers in turns:
        segment = by_question[question]
        assert any(f"*{segment}* has *{sizes[segment]} users*" in a for a in answers), answers


def pid_of(cluster, name: str) -> int:
    return json.loads(cluster.health.read_text())["servers"][name]["pid"]


def test_a_killed_server_the_other_continues_and_it_comes_back(cluster):
    ordered = highly_engaged(cluster)
    one, two = cluster.backends["rasa-server-1"], cluster.backends["rasa-server-2"]
    sender = f"kill-{uuid.uuid4().hex[:10]}"
    assert listed(say(one, sender, "top 5 highly engaged users")) == ordered[:PAGE]
    os.kill(pid_of(cluster, "rasa-server-1"), signal.SIGKILL)
    cluster.wait_for(r"rasa-server-1 exited with status -9")
    # Through the balancer: whichever server it picks, only the second one is alive.
    assert listed(say(cluster.balancer, sender, "show more")) == ordered[PAGE : 2 * PAGE]
    assert listed(say(two, sender, "show more")) == ordered[2 * PAGE : 3 * PAGE]
    cluster.wait_for(r"rasa-server-1 is back \(restart #1", timeout=600)
    assert listed(say(one, sender, "show more")) == ordered[3 * PAGE : 4 * PAGE]
    assert user_turns(cluster, sender) == ["top 5 highly engaged users"] + ["show more"] * 3
    servers = health(cluster, lambda r: r["healthy"])["servers"]
    assert {name: s["restarts"] for name, s in servers.items()} == {
        "action-server": 0,
        "rasa-server-1": 1,
        "rasa-server-2": 0,
        "balancer": 0,
    }


def test_redis_that_stops_answering_refuses_the_message_clearly(cluster):
    from bot.notices import NOT_TAKEN

    ordered = highly_engaged(cluster)
    one, two = cluster.backends["rasa-server-1"], cluster.backends["rasa-server-2"]
    sender = f"redis-{uuid.uuid4().hex[:10]}"
    assert listed(say(one, sender, "top 5 highly engaged users")) == ordered[:PAGE]
    cluster.redis_proxy.pause()  # connections stay open, nothing comes back
    try:
        assert say(two, sender, "show more") == NOT_TAKEN
    finally:
        cluster.redis_proxy.resume()
    assert listed(say(two, sender, "show more")) == ordered[PAGE : 2 * PAGE]
    assert user_turns(cluster, sender) == ["top 5 highly engaged users", "show more"]


def test_serve_says_so_when_redis_does_not_answer(redis_url):
    """A Redis that accepts connections but never answers: `serve` stops with a clear error
    (every Redis call has a time limit) before starting anything."""
    import subprocess
    import sys

    from redis.connection import parse_url

    from segmentation.config import PROJECT_DIR
    from tests.tcp_proxy import TcpProxy

    target = parse_url(redis_url)
    proxy = TcpProxy((target.get("host", "127.0.0.1"), int(target.get("port", 6379))))
    proxy.pause()
    try:
        url = f"redis://127.0.0.1:{proxy.port}/0"
        done = subprocess.run(
            [sys.executable, "-m", "bot", "serve", "--rasa-servers", "2"],
            cwd=PROJECT_DIR,
            env={**os.environ, "REDIS_URL": url, "RASA_PORT": "0", "ACTION_PORT": "0"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        proxy.resume()
        proxy.close()
    assert done.returncode == 1
    assert f"error: Redis at {url} (REDIS_URL) is not reachable" in done.stderr
    assert "Press Ctrl-C" not in done.stdout
