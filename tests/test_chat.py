"""`make chat` (python -m bot chat): demo data when there is no run, a reused model, a real
terminal conversation, and no process left behind after /stop or Ctrl-C."""

import os
import signal
import sys
import time
import uuid

import pytest
from sqlalchemy import create_engine, text

from bot.model import ensure_model
from segmentation import db
from segmentation.config import PROJECT_DIR
from tests.terminal import Terminal, processes_with

STARTUP = 240  # seconds: demo data, loading TensorFlow and the model


@pytest.fixture(scope="module")
def model():
    return ensure_model(quiet=True)


def start_chat(tmp_path, tag):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'chat.db'}",
        "SI_RUNTIME_DIR": str(tmp_path / "var"),
        "SI_TEST_TAG": tag,
        "TERM": "xterm",
        "COLUMNS": "120",
    }
    argv = [sys.executable, "-m", "bot", "chat", "--demo-users", "600"]
    return Terminal(argv, env, PROJECT_DIR)


def assert_nothing_left(tag):
    deadline = time.monotonic() + 20
    while processes_with(tag) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_with(tag) == []


def stop_all(chat, tag):
    """Test clean-up even when an assertion failed: nothing of ours may outlive the test."""
    chat.kill()
    for pid in processes_with(tag):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_chat_builds_demo_data_answers_and_stops_cleanly(model, tmp_path):
    tag = f"chat-{uuid.uuid4().hex}"
    chat = start_chat(tmp_path, tag)
    try:
        chat.expect(r"No segmentation run yet: building demo data", 60)
        chat.expect(r"Bot loaded\. Type a message", STARTUP)
        assert "Training the assistant" not in chat.output  # the current model is reused
        chat.send("how many users are highly engaged?\r")
        answer = chat.expect(r"Highly Engaged has ([\d,]+) users", 60)
        # The terminal gets ANSI bold, never raw *marks*.
        assert "\x1b[1mHighly Engaged\x1b[0m has \x1b[1m" in chat.raw
        engine = create_engine(f"sqlite:///{tmp_path / 'chat.db'}")
        with engine.connect() as conn:
            run_id, size = conn.execute(
                text(
                    "SELECT run_id, COUNT(*) FROM user_segments WHERE segment = 'Highly Engaged' "
                    "AND run_id = (SELECT MAX(id) FROM segmentation_runs WHERE status = 'complete')"
                )
            ).one()
        engine.dispose()
        assert int(answer.group(1).replace(",", "")) == size
        assert f"run #{run_id} of" in chat.output and "*Highly" not in chat.output
        noisy = ("WARNING", "Traceback", "DeprecationWarning", "tensorflow")
        assert not [word for word in noisy if word in chat.output], chat.output
        chat.send("/stop\r")
        chat.wait(60)
        assert_nothing_left(tag)
    finally:
        stop_all(chat, tag)
        db.dispose_engines()


def test_ctrl_c_leaves_no_process_behind(model, tmp_path):
    tag = f"chat-{uuid.uuid4().hex}"
    chat = start_chat(tmp_path, tag)
    try:
        chat.expect(r"Bot loaded\. Type a message", STARTUP)
        assert len(processes_with(tag)) >= 3  # launcher, action server, rasa shell
        chat.send("\x03")  # Ctrl-C at the prompt
        chat.wait(60)
        assert_nothing_left(tag)
    finally:
        stop_all(chat, tag)


def test_the_terminal_is_told_when_a_turn_is_not_saved(model, tmp_path, mariadb_database):
    """The terminal gets the same notice as REST, web chat and Slack when the conversation
    database stops answering (MariaDB reached through a proxy of the test's own, then cut)."""
    from sqlalchemy.engine import make_url

    from bot.tracker_store import HELD
    from tests.servers import own_database, seed
    from tests.tcp_proxy import TcpProxy

    tag = f"chat-{uuid.uuid4().hex}"
    with own_database(mariadb_database, "terminal") as direct:
        seed(direct)
        url = make_url(direct)
        proxy = TcpProxy((url.host, url.port or 3306))
        through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        env = {
            **os.environ,
            "DATABASE_URL": through,
            "SI_RUNTIME_DIR": str(tmp_path / "var"),
            "SI_TEST_TAG": tag,
            "TERM": "xterm",
            "COLUMNS": "200",
        }
        chat = Terminal([sys.executable, "-m", "bot", "chat"], env, PROJECT_DIR)
        try:
            chat.expect(r"Bot loaded\. Type a message", STARTUP)
            chat.send("how many users are highly engaged?\r")
            chat.expect(r"Highly Engaged has [\d,]+ users", 60)
            assert HELD[:40] not in chat.output
            proxy.cut()
            chat.send("hello\r")
            chat.expect(r"this exchange isn't saved yet", 60)
            proxy.restore()
            chat.send("/stop\r")
            chat.wait(60)
            assert_nothing_left(tag)
        finally:
            proxy.close()
            stop_all(chat, tag)
            db.dispose_engines()
