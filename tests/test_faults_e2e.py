"""The real servers under database faults: the action server and the Rasa server reach MariaDB
through a TCP proxy of the test's own (tests/tcp_proxy.py), which is cut, paused and
restored. Replies are checked, an unrelated conversation must be answered (bounded) while
the database hangs, and the `events` table must end up holding every turn - the user being
told when a turn was held. The numbers come from SQL written here."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid

import pytest
import requests
from sqlalchemy.engine import make_url

from bot.channels import write_credentials
from bot.processes import Servers, free_port
from bot.tracker_store import HELD, NO_HISTORY
from tests.servers import ARTIFACTS, current_sizes, own_database, run_sql, seed, size_text
from tests.tcp_proxy import TcpProxy

DID_NOT_HANG = 10.0  # seconds: generous for a loaded 2-core machine
QUESTION = "how many users are highly engaged?"


class Proxied:
    """Servers on a database reached through `proxy`."""

    def __init__(self, servers: Servers, proxy: TcpProxy, direct_url: str) -> None:
        self.servers, self.proxy, self.direct_url = servers, proxy, direct_url

    def say(self, sender: str, text: str, timeout: float = 120) -> str:
        answer = requests.post(
            f"{self.servers.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text},
            timeout=timeout,
        )
        assert answer.status_code == 200
        return "\n".join(r.get("text", "") for r in answer.json())

    def storage(self) -> dict:
        url = f"{self.servers.rasa_url}/webhooks/rest/"
        return requests.get(url, timeout=DID_NOT_HANG).json()["conversations"]

    def wait_written(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.storage()["held_turns"]:
            assert time.monotonic() < deadline, "held turns were not written"
            time.sleep(0.5)

    def sql(self, query: str, **params):
        return run_sql(self.direct_url, query, **params)

    def user_turns(self, sender: str) -> list:
        rows = self.sql(
            "SELECT data FROM events WHERE sender_id = :s AND type_name = 'user' ORDER BY id",
            s=sender,
        )
        return [json.loads(r.data)["text"] for r in rows]


@pytest.fixture(scope="module")
def proxied(mariadb_database, tmp_path_factory):
    """Action server + Rasa server whose DATABASE_URL goes through a proxy to MariaDB."""
    from bot.model import ensure_model

    with contextlib.ExitStack() as stack:
        direct = stack.enter_context(own_database(mariadb_database, "faults"))
        seed(direct)
        url = make_url(direct)
        proxy = TcpProxy((url.host, url.port or 3306))
        stack.callback(proxy.close)
        through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        runtime = tmp_path_factory.mktemp("faults")
        servers = Servers(
            ensure_model(quiet=True),
            free_port(),
            free_port(),
            credentials=write_credentials(runtime, env={}),  # REST and web chat
            extra_env={"DATABASE_URL": through, "SI_RUNTIME_DIR": str(runtime)},
            log_dir=ARTIFACTS / "logs" / "faults",
            timeout=300,
        )
        stack.enter_context(servers)
        yield Proxied(servers, proxy, direct)


def test_a_cut_database_loses_no_turn_and_says_so(proxied):
    db = current_sizes(proxied)
    regular, newcomer = f"cut-{uuid.uuid4().hex[:8]}", f"new-{uuid.uuid4().hex[:8]}"
    assert size_text(db, "Highly Engaged") in proxied.say(regular, QUESTION)
    assert HELD not in proxied.say(regular, "hello")
    proxied.proxy.cut()
    try:
        during = [proxied.say(regular, "hi"), proxied.say(regular, QUESTION)]
        first_words = proxied.say(newcomer, "hello")
        assert all(reply.endswith(HELD) for reply in during)
        assert "can't reach the segment database" in during[1]
        assert NO_HISTORY in first_words and first_words.endswith(HELD)
        storage = proxied.storage()
        assert (storage["held_turns"], storage["writes"]) == (3, "failing")
    finally:
        proxied.proxy.restore()
    proxied.wait_written()
    assert proxied.user_turns(regular) == [QUESTION, "hello", "hi", QUESTION]
    assert proxied.user_turns(newcomer) == ["hello"]
    # The conversation goes on with its context; nothing is held any more.
    follow_up = proxied.say(regular, "and the moderate ones?")
    assert size_text(db, "Moderate Engagement") in follow_up and HELD not in follow_up


def test_a_hung_database_does_not_freeze_other_conversations(proxied):
    busy, other = f"busy-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"
    proxied.say(busy, "hello")
    proxied.say(other, "hello")
    proxied.proxy.pause()
    try:
        data_answer = {}
        asking = threading.Thread(
            target=lambda: data_answer.setdefault("text", proxied.say(busy, QUESTION))
        )
        asking.start()
        time.sleep(1.0)  # the data question is waiting on the hung database now
        started = time.monotonic()
        small_talk = proxied.say(other, "hello", timeout=DID_NOT_HANG)
        small_talk_seconds = time.monotonic() - started
        started = time.monotonic()
        assert requests.get(f"{proxied.servers.rasa_url}/", timeout=DID_NOT_HANG).ok
        assert proxied.storage()["held_turns"] >= 1
        status_seconds = time.monotonic() - started
        print(f"during the pause: hello {small_talk_seconds:.1f} s, status {status_seconds:.1f} s")
        assert small_talk_seconds < DID_NOT_HANG and small_talk.endswith(HELD)
        asking.join(60)
        assert not asking.is_alive(), "the data question hung"
        # Either honest reply: the read timed out (can't reach) or the answer's own limit
        # came first (taking too long); never a number, never silence.
        assert (
            "can't reach the segment database" in data_answer["text"]
            or "taking too long to answer" in data_answer["text"]
        ), data_answer["text"]
    finally:
        proxied.proxy.resume()
    proxied.wait_written()
    assert proxied.user_turns(busy) == ["hello", QUESTION]
    assert proxied.user_turns(other) == ["hello", "hello"]
