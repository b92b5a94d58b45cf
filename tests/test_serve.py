"""`make serve` (python -m bot serve): both servers on loopback ports from the environment,
answering over REST and the web chat, and stopped cleanly by Ctrl-C (SIGINT) or SIGTERM.
With SLACK_APP_TOKEN set it also connects to (a local) Slack in Socket Mode, and leaves that
connection when it stops."""

import os
import signal
import time
import uuid

import pytest
import requests

from bot.processes import free_port
from tests.fake_slack import FakeSlack
from tests.servers import TEST_APP_TOKEN, TEST_TOKEN, ServeProcess, serve_environment
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
    env = {**serve_environment(assistant, tmp_path, tag, rasa_port, action_port), **slack_env}
    serve = ServeProcess(env)
    try:
        serve.wait_for("Press Ctrl-C to stop.")
        banner = "".join(serve.seen)
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
        assert "HTTP API:      off" in banner
        while_serving()
        serve.process.send_signal(stop_signal)
        assert serve.process.wait(60) == 0
        serve.wait_for("^Stopped.", timeout=10)
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
