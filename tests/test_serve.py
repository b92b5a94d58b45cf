"""`make serve` (python -m bot serve): both servers on loopback ports from the environment,
answering over REST and the web chat, and stopped cleanly by Ctrl-C (SIGINT) or SIGTERM.
With SLACK_APP_TOKEN set it also connects to (a local) Slack in Socket Mode, and leaves that
connection when it stops."""

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import requests

from bot.processes import free_port
from segmentation.config import PROJECT_DIR
from tests.fake_slack import FakeSlack
from tests.servers import TEST_APP_TOKEN, TEST_TOKEN
from tests.terminal import processes_with


@pytest.mark.parametrize(
    "stop_signal, socket_mode", [(signal.SIGINT, False), (signal.SIGTERM, True)]
)
def test_serve_answers_and_stops_cleanly(assistant, tmp_path, stop_signal, socket_mode):
    with FakeSlack(TEST_TOKEN) as slack:
        fake = slack.enable_socket_mode(TEST_APP_TOKEN) if socket_mode else None
        slack_env = {
            "SLACK_BOT_TOKEN": TEST_TOKEN if socket_mode else "",
            "SLACK_APP_TOKEN": TEST_APP_TOKEN if socket_mode else "",
            "SLACK_SIGNING_SECRET": "",
            "SLACK_API_URL": slack.api_url,
        }
        connected = fake.wait_connection if socket_mode else lambda: None
        banner = serve_and_stop(assistant, tmp_path, stop_signal, slack_env, connected)
        if socket_mode:  # connected while serving, and left the connection on the way out
            assert "Slack:         Socket Mode" in banner
            fake.wait_for(lambda: fake.connections[0].closed_at is not None)
            (connection,) = fake.connections
            assert connection.closed_by == "client"
        else:
            assert "Slack:         off" in banner


def serve_and_stop(assistant, tmp_path, stop_signal, slack_env, while_serving) -> str:
    """Run `python -m bot serve`, check its answers and `while_serving()`, stop it; returns
    its start-up lines."""
    tag = f"serve-{uuid.uuid4().hex}"
    rasa_port, action_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": assistant.database_url,
        "RASA_PORT": str(rasa_port),
        "ACTION_PORT": str(action_port),
        "SI_RUNTIME_DIR": str(tmp_path),
        "SI_TEST_TAG": tag,
        **slack_env,
    }
    serve = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        while not lines or "Press Ctrl-C to stop." not in lines[-1]:
            line = serve.stdout.readline()
            assert line, "serve exited early:\n" + "".join(lines)
            lines.append(line)
        banner = "".join(lines)
        assert (
            f"http://127.0.0.1:{rasa_port}" in banner
            and f"http://127.0.0.1:{action_port}" in banner
        )
        high = assistant.sql(
            "SELECT size FROM segment_profiles WHERE segment = 'Highly Engaged' AND run_id = "
            "(SELECT MAX(id) FROM segmentation_runs WHERE status = 'complete')"
        )[0].size
        for channel in ("rest", "webchat"):
            reply = requests.post(
                f"http://127.0.0.1:{rasa_port}/webhooks/{channel}/webhook",
                json={"sender": tag, "message": "how many users are highly engaged?"},
                timeout=60,
            ).json()
            assert f"*Highly Engaged* has *{high} users*" in reply[0]["text"]
        page = requests.get(f"http://127.0.0.1:{rasa_port}/webhooks/webchat/", timeout=10)
        assert page.status_code == 200 and "Segment Insights" in page.text
        while_serving()
        serve.send_signal(stop_signal)
        assert serve.wait(60) == 0
        assert "Stopped." in serve.stdout.read()
        deadline = time.monotonic() + 20
        while processes_with(tag) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_with(tag) == []
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{rasa_port}/", timeout=2)
        return banner
    finally:
        for pid in processes_with(tag):
            os.kill(pid, signal.SIGKILL)
