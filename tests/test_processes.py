"""Servers started by the launcher never outlive it, even when it is killed outright."""

import os
import signal
import subprocess
import sys
import time
import uuid

from segmentation.config import PROJECT_DIR
from tests.terminal import processes_with

LAUNCHER = """
import sys, time
from bot.processes import Servers, free_port
servers = Servers(None, 0, free_port(), with_rasa=False).start()
print("ready", flush=True)
time.sleep(600)
"""


def test_action_server_dies_with_a_killed_launcher(tmp_path):
    tag = f"launcher-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "SI_TEST_TAG": tag,
        "PYTHONPATH": str(PROJECT_DIR),
        "SI_RUNTIME_DIR": str(tmp_path),
    }
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert launcher.stdout.readline().strip() == "ready"
        children = [pid for pid in processes_with(tag) if pid != launcher.pid]
        assert children, "the action server is running"
        launcher.send_signal(signal.SIGKILL)  # no chance to clean up
        launcher.wait()
        deadline = time.monotonic() + 20
        while processes_with(tag) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_with(tag) == []
    finally:
        for pid in processes_with(tag):
            os.kill(pid, signal.SIGKILL)
