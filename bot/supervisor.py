"""Keeping the servers of `python -m bot serve` running, and saying how they are.

`Supervisor.check()` (called every `interval` seconds by `bot serve`) looks at each server:

- one that exited, or that failed its health check (`GET /health` on the action server,
  `GET /` on the Rasa server) `unhealthy_after` times in a row, is restarted after a back-off
  (1, 2, 4 ... up to 60 s, or SI_RESTART_DELAYS; back to the first once it has been up for
  `stable_after` seconds), with a log line naming what happened;
- a restarted server is "starting" until its health check answers (at most `start_timeout`
  seconds, else it is restarted again).

Each change of state is printed, and `health.json` in the runtime folder always holds the
current state of every server (state, pid, restarts, since when) and the Rasa server's own
report on conversation storage (GET /webhooks/rest/: held turns, database errors). With several
Rasa servers each is supervised on its own ("rasa-server-1" ...), as is the balancer in front
of them, and the storage report is per server.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

from bot.processes import ManagedProcess, Servers

BACKOFF = (1, 2, 4, 8, 16, 30, 60)


@dataclass
class ServerState:
    """What the supervisor knows about one server."""

    state: str = "up"  # up | starting | waiting (to be restarted)
    since: float = field(default_factory=time.time)
    restarts: int = 0
    failed_checks: int = 0
    backoff_step: int = 0
    restart_at: float = 0.0
    pid: Optional[int] = None
    last_problem: str = ""


def probe(url: str, timeout: float) -> bool:
    """True when `url` answers 200 within `timeout` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, OSError, ValueError):
        return False


def fetch_json(url: str, timeout: float) -> Optional[dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, OSError, ValueError):
        return None


class Supervisor:
    """Restarts crashed or unresponsive servers with back-off; reports their health."""

    def __init__(
        self,
        servers: Servers,
        health_file: Path,
        say: Callable[[str], None] = print,
        probe_timeout: float = 5.0,
        unhealthy_after: int = 3,
        start_timeout: float = 300.0,
        stable_after: float = 120.0,
        backoff: Sequence[float] = BACKOFF,
    ) -> None:
        self.servers = servers
        self.health_file = health_file
        self.say = say
        self.probe_timeout = probe_timeout
        self.unhealthy_after = unhealthy_after
        self.start_timeout = start_timeout
        self.stable_after = stable_after
        self.backoff = list(backoff) or list(BACKOFF)
        self.states: Dict[str, ServerState] = {
            p.name: ServerState(pid=p.process.pid) for p in servers.processes
        }
        self.storage: Optional[dict] = None
        self.write_health()

    def check(self) -> None:
        """One round: look at every server, restart what needs it, update health.json."""
        now = time.time()
        for process in self.servers.processes:
            self._check_one(process, self.states[process.name], now)
        if self.servers.with_rasa:
            self.storage = {
                name: fetch_json(f"{url}/webhooks/rest/", self.probe_timeout)
                for name, url in self.servers.backend_urls().items()
            }
        self.write_health()

    def _check_one(self, process: ManagedProcess, state: ServerState, now: float) -> None:
        healthy = process.running() and probe(self.servers.health_url(process), self.probe_timeout)
        if state.state == "waiting":
            if now >= state.restart_at:
                self._restart(process, state, now)
        elif state.state == "starting":
            if healthy:
                self._become(process, state, "up", now)
                self.say(f"{process.name} is back (restart #{state.restarts}, pid {state.pid})")
            elif not process.running() or now - state.since > self.start_timeout:
                self._schedule(process, state, now, "did not come back")
        elif not process.running():
            code = process.process.returncode
            self._schedule(process, state, now, f"exited with status {code}")
        elif healthy:
            state.failed_checks = 0
            if state.backoff_step and now - state.since > self.stable_after:
                state.backoff_step = 0
        else:
            state.failed_checks += 1
            if state.failed_checks >= self.unhealthy_after:
                self._schedule(process, state, now, "stopped answering its health check")

    def _schedule(self, process: ManagedProcess, state: ServerState, now: float, why: str):
        delay = self.backoff[min(state.backoff_step, len(self.backoff) - 1)]
        state.backoff_step += 1
        state.restart_at = now + delay
        state.last_problem = why
        self._become(process, state, "waiting", now)
        self.say(f"{process.name} {why}; restarting it in {delay:g} s (see {process.log_path})")

    def _restart(self, process: ManagedProcess, state: ServerState, now: float) -> None:
        process.restart()
        state.restarts += 1
        state.pid = process.process.pid
        state.failed_checks = 0
        self._become(process, state, "starting", now)
        self.say(f"{process.name} restarting (restart #{state.restarts}, pid {state.pid})")

    @staticmethod
    def _become(process: ManagedProcess, state: ServerState, name: str, now: float) -> None:
        state.state, state.since = name, now

    def healthy(self) -> bool:
        """True when every server is up."""
        return all(state.state == "up" for state in self.states.values())

    def _storage_report(self) -> Optional[dict]:
        """One Rasa server: its report; several: each one's, by name."""
        reports = {
            name: (report or {}).get("conversations")
            for name, report in (self.storage or {}).items()
        }
        if self.servers.rasa_servers > 1:
            return reports
        return next(iter(reports.values()), None)

    def write_health(self) -> None:
        """health.json: every server's state, and the Rasa server's storage report."""
        report = {
            "checked_at": time.time(),
            "healthy": self.healthy(),
            "servers": {name: asdict(state) for name, state in self.states.items()},
            "conversation_storage": self._storage_report(),
        }
        temporary = self.health_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(report, indent=2))
        temporary.replace(self.health_file)
