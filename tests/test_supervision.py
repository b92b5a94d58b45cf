"""`python -m bot serve` keeps the service up: a server killed outright or hung is restarted
(with a log line and health.json saying so), a data question meanwhile gets a clear reply
instead of silence, and the conversation goes on afterwards with its context. The Rasa HTTP API is
served only with SI_API_TOKEN, and then only with that token; the channels never need it."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
import requests

from bot.notices import ACTION_SERVER_DOWN
from bot.processes import free_port
from tests.servers import ServeProcess, current_sizes, serve_environment, size_text

QUESTION = "how many users are highly engaged?"
TOKEN = "api-token-for-tests-only"


@pytest.fixture
def serve(assistant, tmp_path):
    tag = f"supervised-{uuid.uuid4().hex}"
    rasa_port, action_port = free_port(), free_port()
    env = serve_environment(
        assistant,
        tmp_path,
        tag,
        rasa_port,
        action_port,
        SI_RESTART_DELAYS="5",  # a clear window in which the server is down
        SI_API_TOKEN=TOKEN,
    )
    served = ServeProcess(env)
    served.url = f"http://127.0.0.1:{rasa_port}"
    served.health = tmp_path / "health.json"
    try:
        served.wait_for("Press Ctrl-C to stop.")
        yield served
    finally:
        served.stop(60)


def say(url: str, sender: str, text: str) -> str:
    answer = requests.post(
        f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=120
    )
    assert answer.status_code == 200
    return "\n".join(r.get("text", "") for r in answer.json())


def pid_of(served: ServeProcess, name: str) -> int:
    return json.loads(served.health.read_text())["servers"][name]["pid"]


def healthy_report(served: ServeProcess, timeout: float = 30.0) -> dict:
    """health.json once it says every server is up (it is written after each check)."""
    deadline = time.monotonic() + timeout
    while True:
        report = json.loads(served.health.read_text())
        if report["healthy"] or time.monotonic() > deadline:
            return report
        time.sleep(0.5)


def test_killed_servers_are_restarted_and_the_conversation_goes_on(assistant, serve):
    db = current_sizes(assistant)
    sender = f"sup-{uuid.uuid4().hex[:8]}"
    assert size_text(db, "Highly Engaged") in say(serve.url, sender, QUESTION)

    os.kill(pid_of(serve, "action-server"), signal.SIGKILL)
    serve.wait_for(r"action-server exited with status -9; restarting it in 5 s")
    assert say(serve.url, sender, QUESTION) == ACTION_SERVER_DOWN  # not silence
    serve.wait_for(r"action-server is back \(restart #1")
    assert size_text(db, "Highly Engaged") in say(serve.url, sender, QUESTION)

    os.kill(pid_of(serve, "rasa-server"), signal.SIGKILL)
    serve.wait_for(r"rasa-server exited with status -9; restarting it in 5 s")
    serve.wait_for(r"rasa-server is back \(restart #1")
    # A new Rasa server: the conversation comes back from SQL, context included.
    assert size_text(db, "Moderate Engagement") in say(serve.url, sender, "and the moderate ones?")
    # A server that hangs (stopped, still "running") is restarted too.
    os.kill(pid_of(serve, "action-server"), signal.SIGSTOP)
    serve.wait_for(r"action-server stopped answering its health check; restarting it in 5 s")
    serve.wait_for(r"action-server is back \(restart #2")
    assert size_text(db, "Highly Engaged") in say(serve.url, sender, QUESTION)
    health = healthy_report(serve)
    assert health["healthy"] is True
    assert {name: s["restarts"] for name, s in health["servers"].items()} == {
        "action-server": 2,
        "rasa-server": 1,
    }
    rows = assistant.sql(
        "SELECT COUNT(*) AS n FROM events WHERE sender_id = :s AND type_name = 'user'", s=sender
    )
    assert rows[0].n == 5


def test_the_http_api_needs_the_token_and_the_channels_do_not(assistant, serve):
    tracker = f"{serve.url}/conversations/someone/tracker"
    assert requests.get(tracker, timeout=30).status_code == 401
    assert requests.get(f"{serve.url}/status", timeout=30).status_code == 401
    assert requests.get(f"{serve.url}/status", params={"token": TOKEN}, timeout=30).ok
    assert say(serve.url, f"api-{uuid.uuid4().hex[:8]}", "hello")
    command_line = Path(f"/proc/{pid_of(serve, 'rasa-server')}/cmdline").read_bytes()
    assert b"--enable-api" in command_line and TOKEN.encode() not in command_line


def test_without_a_token_the_http_api_is_off(assistant):
    for path in ("/status", "/conversations/someone/tracker", "/version"):
        assert requests.get(assistant.rasa_url + path, timeout=30).status_code == 404, path
    assert requests.get(assistant.rasa_url + "/", timeout=30).ok
