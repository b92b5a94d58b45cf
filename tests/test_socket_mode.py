"""Socket Mode without the assistant: the local Slack's apps.connections.open and WebSocket
endpoint (tests/fake_socket_mode.py) check what Slack checks, and our client
(bot/slack_socket.py) acknowledges envelopes and reconnects by itself.

The end-to-end tests with the real Rasa and action servers are in test_slack_socket.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import List

import pytest
import requests
import websockets
from rasa.core.channels.channel import UserMessage

from bot.slack_handler import SlackHandler
from bot.slack_socket import SlackSocketModeInput, backoff_delay
from tests.fake_slack import FakeSlack
from tests.servers import TEST_APP_TOKEN, TEST_TOKEN
from tests.slack_payloads import direct_event, event_callback, unique


def open_connection(slack: FakeSlack, token: str = TEST_APP_TOKEN, **kwargs) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = slack.api_url + "apps.connections.open"
    return requests.post(url, headers=headers, timeout=10, **kwargs).json()


def dm(text: str = "how many users are highly engaged?") -> dict:
    return event_callback(direct_event(text, unique("D"), unique("U")))


def test_apps_connections_open_takes_only_the_app_token_in_the_header():
    with FakeSlack(TEST_TOKEN) as slack:
        assert open_connection(slack)["error"] == "invalid_auth"  # no app token exists yet
        slack.enable_socket_mode(TEST_APP_TOKEN)
        answer = open_connection(slack)
        assert answer["ok"] is True
        assert answer["url"].startswith(f"ws://127.0.0.1:{slack.socket_mode.port}/link/?ticket=")
        assert open_connection(slack, TEST_TOKEN)["error"] == "not_allowed_token_type"
        assert open_connection(slack, "xapp-1-wrong")["error"] == "invalid_auth"
        body = open_connection(slack, "", data={"token": TEST_APP_TOKEN})
        assert body["error"] == "not_authed"
        auth_test = requests.post(
            slack.api_url + "auth.test",
            headers={"Authorization": f"Bearer {TEST_APP_TOKEN}"},
            timeout=10,
        ).json()
        assert auth_test["error"] == "not_allowed_token_type"


def test_the_endpoint_greets_refuses_used_or_expired_urls_and_counts_late_acks():
    with FakeSlack(TEST_TOKEN) as slack:
        fake = slack.enable_socket_mode(TEST_APP_TOKEN, ack_timeout=0.5)
        url = open_connection(slack)["url"]
        received: List[dict] = []

        async def app() -> None:
            async with websockets.connect(url) as socket:
                hello = json.loads(await socket.recv())
                on_time, late, never = (fake.send_event(dm()) for _ in range(3))
                for _ in range(3):
                    received.append(json.loads(await socket.recv()))
                await socket.send(json.dumps({"envelope_id": on_time}))
                await asyncio.sleep(1.0)
                await socket.send(json.dumps({"envelope_id": late}))
                await socket.send(json.dumps({"envelope_id": "never-sent"}))
                await asyncio.to_thread(fake.wait_acked, late)
                with pytest.raises(websockets.InvalidStatusCode) as reused:
                    await websockets.connect(url)  # a URL opens one connection only
                assert reused.value.status_code == 401
                fake.url_ttl = 0.0
                with pytest.raises(websockets.InvalidStatusCode):
                    await websockets.connect(open_connection(slack)["url"])
                return hello, on_time, late, never

        hello, on_time, late, never = asyncio.run(app())

    assert hello["type"] == "hello" and hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": "A0SEGAPP"}
    assert [r["envelope_id"] for r in received] == [on_time, late, never]
    first = received[0]
    assert first["type"] == "events_api" and first["accepts_response_payload"] is False
    assert first["retry_attempt"] == 0 and first["retry_reason"] == ""
    assert first["payload"]["type"] == "event_callback" and first["payload"]["event_id"]
    failures = fake.ack_failures()
    assert on_time not in failures
    assert late in failures and fake.envelopes[late].ack_delay > 0.5
    assert never in failures and fake.envelopes[never].acks == 0
    assert any("never-sent" in f for f in failures)
    assert fake.refused == ["unknown or used ticket", "expired ticket"]


def test_backoff_doubles_up_to_the_cap():
    assert backoff_delay(0) == 0.0
    for failures in range(1, 12):
        delay = backoff_delay(failures, base=1.0, cap=60.0)
        assert min(60.0, 2.0 ** (failures - 1)) * 0.5 <= delay <= min(60.0, 2.0 ** (failures - 1))


async def _until(check, timeout: float = 60.0) -> None:
    """Wait (without blocking the loop our client runs in) until `check()` is truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_client_acks_first_and_reconnects_with_fresh_urls_after_drops_and_an_outage():
    """Our client on its own: every envelope acknowledged in time and handed over once; a
    socket closed by the server, a `disconnect` envelope, and an outage that outlives the
    URL it had (single-use, short-lived) each end in a new connection that works."""
    with FakeSlack(TEST_TOKEN) as slack:
        fake = slack.enable_socket_mode(TEST_APP_TOKEN)
        handler = SlackHandler(TEST_TOKEN, api_url=slack.api_url)
        channel = SlackSocketModeInput(TEST_APP_TOKEN, handler, ping_interval=1.0)
        messages: List[UserMessage] = []

        async def on_new_message(message: UserMessage) -> None:
            messages.append(message)

        async def delivered(body: dict) -> UserMessage:
            count = len(messages)
            envelope = fake.send_event(body)
            await _until(lambda: len(messages) > count)
            assert fake.envelopes[envelope].acks == 1
            return messages[-1]

        async def scenario() -> None:
            await channel.start(on_new_message)
            try:
                first = await asyncio.to_thread(fake.wait_connection)
                message = await delivered(dm("hello there"))
                assert message.text == "hello there" and message.input_channel == "slack"
                await _until(lambda: channel.connections == 1)

                fake.close_current()
                second = await asyncio.to_thread(fake.wait_connection, first.number)
                await delivered(dm())

                fake.send_disconnect("refresh_requested")
                third = await asyncio.to_thread(fake.wait_connection, second.number)
                assert second.closed_by == "client"  # slack_sdk closed the old one itself
                await delivered(dm())

                fake.url_ttl = 1.0  # URLs issued during the outage expire before it ends
                await asyncio.to_thread(fake.start_outage)
                await asyncio.sleep(2.5)
                fake.end_outage()
                fourth = await asyncio.to_thread(fake.wait_connection, third.number, 120)
                await delivered(dm())
                assert (await channel.connected()) is True
                assert fourth.number > third.number
            finally:
                await channel.stop()

        asyncio.run(scenario())
        fake.wait_for(lambda: all(c.closed_at for c in fake.connections), 10)

    assert len(messages) == 4
    assert fake.ack_failures() == []
    assert "expired ticket" not in fake.refused  # a URL whose connection failed is not reused
    closers = [c.closed_by for c in fake.connections]
    assert closers[:3] == ["server", "client", "server"] and closers[-1] == "client"
