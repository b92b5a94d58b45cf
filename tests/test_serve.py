"""`make serve` (python -m bot serve): both servers on loopback ports from the environment,
answering over REST and the web chat, and stopped cleanly by Ctrl-C (SIGINT) or SIGTERM."""

import os
import signal
import time
import uuid

import pytest
import requests

from bot.processes import free_port
from tests.servers import ServeProcess, serve_environment
from tests.terminal import processes_with


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serve_answers_and_stops_cleanly(assistant, tmp_path, stop_signal):
    tag = f"serve-{uuid.uuid4().hex}"
    rasa_port, action_port = free_port(), free_port()
    env = serve_environment(assistant, tmp_path, tag, rasa_port, action_port)
    serve = ServeProcess(env)
    try:
        serve.wait_for("Press Ctrl-C to stop.")
        banner = "".join(serve.seen)
        assert (
            f"http://127.0.0.1:{rasa_port}" in banner
            and f"http://127.0.0.1:{action_port}" in banner
        )
        assert "Slack:         off" in banner
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
        serve.process.send_signal(stop_signal)
        assert serve.process.wait(60) == 0
        serve.wait_for("^Stopped.", timeout=10)
        deadline = time.monotonic() + 20
        while processes_with(tag) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_with(tag) == []
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{rasa_port}/", timeout=2)
    finally:
        for pid in processes_with(tag):
            os.kill(pid, signal.SIGKILL)
