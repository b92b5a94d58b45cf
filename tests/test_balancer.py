"""HAProxy with the repo's config (deploy/haproxy.cfg.tmpl via bot/balancer.py) in front of two
small HTTP servers that say who answered: one sender always reaches the same server (REST/web
chat "sender", Slack event channel), senders spread over both, and a server that is gone is
skipped without the client seeing an error."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List

import pytest
import requests

from bot import balancer
from bot.processes import ManagedProcess, free_port, wait_until_ready


class Named(ThreadingHTTPServer):
    daemon_threads = True


def backend(name: str) -> Named:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            body = json.dumps({"server": name}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args) -> None:
            pass

    server = Named(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def proxied(haproxy, tmp_path):
    servers = [backend("one"), backend("two")]
    port = free_port()
    ports: List[int] = [s.server_address[1] for s in servers]
    config = balancer.write_config(tmp_path, "127.0.0.1", port, ports)
    check = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    proxy = ManagedProcess("balancer", balancer.command(config), {}, tmp_path)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/balancer-health", proxy, 30)
        yield f"http://127.0.0.1:{port}", servers
    finally:
        proxy.stop()
        for server in servers:
            server.shutdown()
            server.server_close()


def served_by(url: str, body: dict) -> str:
    response = requests.post(f"{url}/webhooks/rest/webhook", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["server"]


def test_one_sender_stays_on_one_server_and_senders_spread(proxied):
    url, _ = proxied
    chosen = {}
    for number in range(24):
        sender = f"sender-{number}"
        seen = {served_by(url, {"sender": sender, "message": f"m{i}"}) for i in range(4)}
        assert len(seen) == 1, (sender, seen)
        chosen[sender] = seen.pop()
    assert set(chosen.values()) == {"one", "two"}
    slack = {"type": "event_callback", "event": {"channel": "C0SAME", "text": "hi"}}
    assert len({served_by(url, slack) for _ in range(4)}) == 1


def test_a_server_that_is_gone_is_skipped(proxied):
    url, servers = proxied
    senders = [f"gone-{number}" for number in range(12)]  # the hash is the same every run
    on_one = [s for s in senders if served_by(url, {"sender": s, "message": "x"}) == "one"]
    assert on_one
    servers[0].shutdown()
    servers[0].server_close()  # connections to it are now refused
    for sender in on_one:  # at once, before any health check noticed
        assert served_by(url, {"sender": sender, "message": "y"}) == "two"
