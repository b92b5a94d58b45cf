"""The real assistant for end-to-end tests: MariaDB + action server + Rasa server + fake Slack.

tests/conftest.py registers this module as a plugin, so any test can ask for `assistant`. It is
session-scoped: the first use starts everything, the end of the session stops it. It:

- starts `FakeSlack` (tests/fake_slack.py) on 127.0.0.1;
- creates its own MariaDB database next to the session's `mariadb_database` (so the per-test
  table truncation of the `db_url` fixture can't wipe it) and seeds it with a built run over
  tiered_population(30) plus a users table (device, plan, country), like the `seeded` fixture;
- trains the model if needed (`ensure_model()`, 2-3 minutes the first time);
- starts the action server and the Rasa server with the credentials from bot/channels.py:
  REST, web chat, and Slack pointed at the fake Slack (SLACK_API_URL, test token and secret);
  SI_PUBLIC_URL is the Rasa server's URL and charts go to a temporary SI_CHARTS_DIR.

Server logs go to test-artifacts/logs/ (git-ignored).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.channels import write_credentials
from bot.processes import HOST, Servers, free_port
from segmentation.config import PROJECT_DIR
from tests.fake_slack import BOT_USER_ID, TEAM_ID, FakeSlack, SlackSigner

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
ARTIFACTS = PROJECT_DIR / "test-artifacts"
TEST_TOKEN = "xoxb-0000000000-test-segment-insights"
TEST_APP_TOKEN = "xapp-1-A0SEGAPP-0000000000-test-segment-insights"  # Socket Mode
TEST_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # not a real secret


@dataclass
class Assistant:
    """Handles on the running servers, for tests."""

    servers: Servers
    database_url: str
    slack: FakeSlack
    charts_dir: Path
    model: Path
    token: str = TEST_TOKEN
    signing_secret: str = TEST_SIGNING_SECRET
    team_id: str = TEAM_ID
    bot_user_id: str = BOT_USER_ID
    extra_env: Dict[str, str] = field(default_factory=dict)

    @property
    def rasa_url(self) -> str:
        return self.servers.rasa_url

    @property
    def action_url(self) -> str:
        return self.servers.action_url

    @property
    def action_port(self) -> int:
        return self.servers.action_port

    @property
    def webchat_url(self) -> str:
        return f"{self.rasa_url}/webhooks/webchat/"

    @property
    def slack_webhook(self) -> str:
        return f"{self.rasa_url}/webhooks/slack/webhook"

    def signer(self, webhook: Optional[str] = None) -> SlackSigner:
        """Signed Slack requests to this server's (or `webhook`'s) Slack endpoint."""
        return SlackSigner(webhook or self.slack_webhook, self.signing_secret, self.team_id)

    def rest(self, message: str, sender: Optional[str] = None, channel: str = "rest") -> List[Dict]:
        """Send `message` through the REST (or web chat) webhook; returns the replies."""
        sender = sender or f"test-{uuid.uuid4().hex[:12]}"
        response = requests.post(
            f"{self.rasa_url}/webhooks/{channel}/webhook",
            json={"sender": sender, "message": message},
            timeout=120,
        )
        response.raise_for_status()
        return response.json()

    def sql(self, query: str, **params: Any) -> List[Any]:
        """Rows of a raw SQL query on the assistant's database (independent of the app)."""
        return run_sql(self.database_url, query, **params)


def run_sql(database_url: str, query: str, **params: Any) -> List[Any]:
    """Rows of a raw SQL query on `database_url`, on a connection of its own."""
    engine = create_engine(database_url, future=True)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(query), params))
    finally:
        engine.dispose()


def seed(url: str) -> None:
    """A complete run over three clear tiers (30 users each) and a users table."""
    from segmentation import db
    from segmentation.schema import ensure_schema
    from tests.factories import seed_tiers

    engine = db.get_engine(url)
    ensure_schema(engine)
    seed_tiers(engine)
    engine.dispose()


@contextlib.contextmanager
def own_database(session_database_url: str, suffix: str = "assistant"):
    """A database of our own on the session's MariaDB server, dropped afterwards."""
    url = make_url(session_database_url)
    name = f"{url.database}_{suffix}"
    server = create_engine(url.set(database=""), future=True)
    with server.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        from segmentation import db

        db.dispose_engines()
        with server.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


def slack_environment(fake: FakeSlack, **extra: str) -> Dict[str, str]:
    """The Slack variables for the servers (test token and secret, fake API URL)."""
    return {
        "SLACK_BOT_TOKEN": TEST_TOKEN,
        "SLACK_SIGNING_SECRET": TEST_SIGNING_SECRET,
        "SLACK_APP_TOKEN": "",  # Socket Mode only where a test turns it on
        "SLACK_API_URL": fake.api_url,
        "SLACK_ALLOWED_CHANNELS": "",
        "SLACK_ALLOWED_TEAMS": "",
        "SLACK_CONVERSATION_GRANULARITY": "",
        **extra,
    }


def start_rasa(
    assistant: Assistant, folder: Path, name: str, **slack_settings: str
) -> contextlib.AbstractContextManager:
    """Another Rasa server on the same action server and database, with other Slack settings
    (e.g. SLACK_ALLOWED_CHANNELS). A context manager yielding its `Servers`."""

    @contextlib.contextmanager
    def run():
        folder.mkdir(parents=True, exist_ok=True)
        env = {**assistant.extra_env, **slack_environment(assistant.slack, **slack_settings)}
        credentials = write_credentials(folder, env=env)
        servers = Servers(
            assistant.model,
            free_port(),
            assistant.action_port,
            credentials=credentials,
            extra_env=env,
            log_dir=ARTIFACTS / "logs" / name,
        )
        try:
            servers.start_rasa()
            yield servers
        finally:
            servers.stop()

    return run()


class ServeProcess:
    """`python -m bot serve` in the background; its output lines read as they come."""

    def __init__(self, env: Dict[str, str], args: Sequence[str] = ()) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", *args],
            cwd=PROJECT_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.tag = env.get("SI_TEST_TAG")
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.seen: List[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def stop(self, timeout: float) -> None:
        """SIGTERM and wait; then kill whatever with its SI_TEST_TAG is still alive."""
        from tests.terminal import processes_with

        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        finally:
            for pid in processes_with(self.tag) if self.tag else []:
                os.kill(pid, signal.SIGKILL)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)  # the process closed its output

    def wait_for(self, pattern: str, timeout: float = 300.0) -> str:
        """The first new output line matching the regular expression `pattern`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if not line:
                ended = "serve exited" if line is None else "timed out"
                raise AssertionError(f"{ended} waiting for {pattern!r}:\n{''.join(self.seen)}")
            self.seen.append(line)
            if re.search(pattern, line):
                return line


def serve_environment(
    assistant: Assistant, runtime: Path, tag: str, rasa_port: int, action_port: int, **extra: str
) -> Dict[str, str]:
    """Environment for `python -m bot serve` on the assistant's database, without Slack;
    SI_TEST_TAG=`tag` marks its processes (tests/terminal.py processes_with)."""
    return {
        **os.environ,
        "DATABASE_URL": assistant.database_url,
        "RASA_PORT": str(rasa_port),
        "ACTION_PORT": str(action_port),
        "SI_RUNTIME_DIR": str(runtime),
        "SI_TEST_TAG": tag,
        "SLACK_BOT_TOKEN": "",
        "SLACK_SIGNING_SECRET": "",
        **extra,
    }


_running: Dict[str, Assistant] = {}


@pytest.fixture(scope="session")
def assistant(request, mariadb_database, tmp_path_factory) -> Assistant:
    """The running assistant (see the module docstring); one per test session."""
    if "assistant" in _running:  # imported into several modules: one shared instance
        return _running["assistant"]
    from bot.model import ensure_model

    stack = contextlib.ExitStack()
    request.addfinalizer(stack.close)
    request.addfinalizer(lambda: _running.pop("assistant", None))
    fake = stack.enter_context(FakeSlack(TEST_TOKEN))
    database_url = stack.enter_context(own_database(mariadb_database))
    seed(database_url)
    model = ensure_model(quiet=True)

    runtime = tmp_path_factory.mktemp("assistant")
    charts = runtime / "charts"
    charts.mkdir()
    rasa_port, action_port = free_port(), free_port()
    env = {
        "DATABASE_URL": database_url,
        "SI_RUNTIME_DIR": str(runtime),
        "SI_CHARTS_DIR": str(charts),
        "SI_PUBLIC_URL": f"http://{HOST}:{rasa_port}",
        **slack_environment(fake),
    }
    credentials = write_credentials(runtime, env=env)
    servers = Servers(
        model,
        rasa_port,
        action_port,
        credentials=credentials,
        extra_env=env,
        log_dir=ARTIFACTS / "logs" / "assistant",
        timeout=300,
    )
    stack.enter_context(servers)
    _running["assistant"] = Assistant(
        servers=servers,
        database_url=database_url,
        slack=fake,
        charts_dir=charts,
        model=model,
        extra_env=env,
    )
    return _running["assistant"]


def current_sizes(assistant: Assistant) -> Dict[str, Any]:
    """The current run and its segment sizes, straight from the tables (not the app)."""
    run = assistant.sql(
        "SELECT id, created_at FROM segmentation_runs WHERE status = 'complete' "
        "ORDER BY id DESC LIMIT 1"
    )[0]
    rows = assistant.sql(
        "SELECT segment, size, share FROM segment_profiles WHERE run_id = :run ORDER BY `rank`",
        run=run.id,
    )
    return {
        "run_id": run.id,
        "created_at": run.created_at,
        "segments": {r.segment: (int(r.size), float(r.share)) for r in rows},
        "total": sum(int(r.size) for r in rows),
    }


SEGMENTS = ("Low Engagement", "Moderate Engagement", "Highly Engaged")


def size_text(db: Dict[str, Any], segment: str) -> str:
    """The size answer in mrkdwn, built from `current_sizes` (the tables, not the app)."""
    size, share = db["segments"][segment]
    return (
        f"*{segment}* has *{size:,} users*, {share * 100:.1f}% of all {db['total']:,} users.\n"
        f"_From run #{db['run_id']} of {db['created_at']:%d %b %Y %H:%M} UTC._"
    )


def wait_posts(assistant: Assistant, channel: str, count: int = 1, **match: Any) -> List[Dict]:
    """Wait until the fake Slack has `count` messages posted to `channel`; returns them."""
    return assistant.slack.wait_for(
        lambda: (lambda found: found if len(found) >= count else None)(
            assistant.slack.posted(channel, **match)
        )
    )


def reached_assistant(assistant: Assistant, channel: str) -> int:
    """Tracker events stored for conversations in `channel` (sender ids are
    user_channel_thread): 0 means the request never got to the assistant."""
    rows = assistant.sql(
        "SELECT COUNT(*) AS n FROM events WHERE sender_id LIKE :pattern",
        pattern=f"%{channel}%",
    )
    return int(rows[0].n)
