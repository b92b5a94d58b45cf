"""`python -m bot chat|serve|train`: run the assistant.

chat   builds demo data if there is no run, trains if the model is stale, starts the action server
       and opens `rasa shell`; stops everything when you quit (/stop) or press Ctrl-C.
serve  starts the action server and the Rasa server (REST, web chat, and Slack when its
       environment variables are set: Socket Mode with SLACK_APP_TOKEN, the Events API with
       SLACK_SIGNING_SECRET) on loopback ports from RASA_PORT / ACTION_PORT, and
       keeps them running: a server that exits or stops answering is restarted with back-off
       (bot/supervisor.py); their health is in <runtime folder>/health.json.
       `--rasa-servers N` (or SI_RASA_SERVERS) runs N Rasa servers on the ports after
       RASA_PORT (RASA_BACKEND_PORT for the first), behind HAProxy on RASA_PORT, sharing the
       SQL tracker store and the Redis lock store at REDIS_URL (docs/scale.md).
train  trains the model if the training data changed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from typing import List, Optional

from bot.channels import slack_banner, write_credentials
from bot.environment import rasa_command
from bot.lock_store import RedisUnavailable, connect, redis_url, shown
from bot.model import ensure_model
from bot.processes import HOST, Servers, api_enabled, free_port, port_from_env
from bot.supervisor import BACKOFF, Supervisor
from segmentation.config import PROJECT_DIR, runtime_dir
from segmentation.errors import NoDataError, SegmentationError


def ensure_run(demo_users: int) -> None:
    """Build demo segments when the database has no run yet."""
    from segmentation.demo import build_demo
    from segmentation.queries import SegmentQueries

    queries = SegmentQueries()
    try:
        run = queries.current_run()
        print(f"Using segments from {run.label} ({run.n_users:,} users).")
        return
    except NoDataError:
        print("No segmentation run yet: building demo data and segments first.")
    result = build_demo(queries.engine, demo_users, say=print)
    print(f"Run #{result.run_id} is current: {result.n_users:,} users.")


def cmd_chat(args: argparse.Namespace) -> int:
    ensure_run(args.demo_users)
    model = ensure_model()
    servers = Servers(model, 0, port_from_env("ACTION_PORT", 0), with_rasa=False)
    shell_port = free_port()
    command = [
        *rasa_command(),
        "shell",
        "--quiet",
        "--model",
        str(model),
        "--endpoints",
        "endpoints.yml",
        "--interface",
        HOST,
        "--port",
        str(shell_port),
    ]
    print("Starting the assistant (about 30 seconds)...")
    with servers:
        shell = subprocess.Popen(command, cwd=PROJECT_DIR, env=servers.env)
        try:
            return shell.wait()
        except KeyboardInterrupt:
            shell.send_signal(signal.SIGINT)
            try:
                shell.wait(10)
            except subprocess.TimeoutExpired:
                shell.kill()
            return 130
        finally:
            if shell.poll() is None:
                shell.kill()
                shell.wait()


def backend_ports(rasa_port: int, count: int) -> List[int]:
    """Ports of `count` Rasa servers behind the balancer on `rasa_port`: consecutive from
    RASA_BACKEND_PORT (default: the port after RASA_PORT), or free ones when RASA_PORT is 0."""
    first = int(os.environ.get("RASA_BACKEND_PORT") or 0)
    if not first and not int(os.environ.get("RASA_PORT", 5005)):
        return [free_port() for _ in range(count)]
    first = first or rasa_port + 1
    return list(range(first, first + count))


def check_scale_out() -> None:
    """Several Rasa servers need Redis (answering within seconds) and HAProxy: RuntimeError
    with what to do when either is missing."""
    from bot.balancer import haproxy_binary

    haproxy_binary()
    connect(redis_url()).close()


def cmd_serve(args: argparse.Namespace) -> int:
    count = args.rasa_servers
    if count < 1:
        raise RuntimeError("--rasa-servers must be at least 1")
    if count > 1:
        check_scale_out()
    model = ensure_model()
    rasa_port = port_from_env("RASA_PORT", 5005)
    action_port = port_from_env("ACTION_PORT", 5055)
    backends = backend_ports(rasa_port, count) if count > 1 else None
    credentials = write_credentials(runtime_dir())
    # Chart links in answers point at the Rasa server, or at the public address in front of it.
    public_url = os.environ.get("SI_PUBLIC_URL") or f"http://{HOST}:{rasa_port}"
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    extra_env = {"SI_PUBLIC_URL": public_url}
    with Servers(
        model,
        rasa_port,
        action_port,
        credentials,
        extra_env,
        rasa_servers=count,
        backend_ports=backends,
    ) as servers:
        if count > 1:
            print(f"Balancer:      {servers.rasa_url} (HAProxy, routes by sender)")
            for name, url in servers.backend_urls().items():
                print(f"  {name}: {url}")
            print(f"Lock store:    Redis at {shown(redis_url())}")
        print(f"Rasa server:   {servers.rasa_url} (REST: /webhooks/rest/webhook)")
        print(f"Web chat:      {servers.rasa_url}/webhooks/webchat/")
        for line in slack_banner(os.environ, servers.rasa_url):
            print(line)
        print(f"Action server: {servers.action_url}")
        if api_enabled(servers.env):
            print("HTTP API:      on, every call needs the token in SI_API_TOKEN")
        else:
            print("HTTP API:      off (set SI_API_TOKEN to serve it with that token)")
        print(f"Logs:          {servers.log_dir}")
        print(f"Health:        {runtime_dir() / 'health.json'}")
        print("Press Ctrl-C to stop.", flush=True)
        supervisor = Supervisor(
            servers, runtime_dir() / "health.json", say=say, backoff=restart_delays()
        )
        while not stop.wait(SUPERVISE_EVERY):
            supervisor.check()
    print("Stopped.")
    return 0


SUPERVISE_EVERY = 2.0


def restart_delays() -> List[float]:
    """Seconds to wait before each restart of a server (SI_RESTART_DELAYS, comma-separated;
    the last one repeats)."""
    raw = os.environ.get("SI_RESTART_DELAYS", "").strip()
    return [float(x) for x in raw.split(",") if x.strip()] if raw else list(BACKOFF)


def say(line: str) -> None:
    """A supervisor log line on stdout, with the time."""
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}", flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    print(ensure_model())
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    chat = sub.add_parser("chat", help="terminal chat with the assistant")
    chat.add_argument("--demo-users", type=int, default=5000, help="demo size when no run exists")
    chat.set_defaults(handler=cmd_chat)
    serve = sub.add_parser("serve", help="action server + Rasa server(s)")
    serve.add_argument(
        "--rasa-servers",
        type=int,
        default=int(os.environ.get("SI_RASA_SERVERS") or 1),
        help="Rasa servers behind HAProxy sharing Redis locks (default 1: no balancer)",
    )
    serve.set_defaults(handler=cmd_serve)
    sub.add_parser("train", help="train if the data changed").set_defaults(handler=cmd_train)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except SegmentationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (RuntimeError, RedisUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
