"""Starting and stopping the action server and the Rasa server(s) on loopback ports.

Each server runs in its own process group, so stopping it also stops anything it started;
`Servers` is a context manager that always stops what it started, on errors and Ctrl-C too.
`ManagedProcess.restart()` starts a server again with the same command (bot/supervisor.py).

The servers get short database time limits (`SERVER_DB_TIMEOUTS`, each overridable from the
environment), a 1 MB cap on request bodies (SANIC_REQUEST_MAX_SIZE), and the Rasa HTTP API
only when SI_API_TOKEN is set: then `--enable-api` with that token (bot/rasa_cli.py passes it
to Rasa, so it never shows in a process list). The channels never need the token.

With `rasa_servers=N` (N > 1) there are N Rasa servers ("rasa-server-1" ...) on `backend_ports`
and HAProxy ("balancer", bot/balancer.py) on `rasa_port` in front of them; they share the SQL
tracker store (SI_RASA_SERVERS=N tells it to check its memory copy against the database) and
the Redis lock store (SI_LOCK_STORE, REDIS_URL; bot/lock_store.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

from bot import balancer
from bot.environment import rasa_command, rasa_env
from bot.lock_store import redis_url
from segmentation.config import PROJECT_DIR, runtime_dir

HOST = os.environ.get("SI_HOST", "127.0.0.1")
SERVER_DB_TIMEOUTS = {
    "SI_DB_CONNECT_TIMEOUT": "3",
    "SI_DB_READ_TIMEOUT": "8",
    "SI_DB_WRITE_TIMEOUT": "8",
    "SI_DB_STATEMENT_TIMEOUT": "6",
}
MAX_REQUEST_BYTES = str(2**20)


def free_port() -> int:
    """A TCP port that is free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_from_env(name: str, default: int) -> int:
    """A port from the environment; 0 means "pick a free one"."""
    value = int(os.environ.get(name, default))
    return value or free_port()


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the launcher dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


PR_SET_PDEATHSIG = 1


class ManagedProcess:
    """A child process in its own process group, with its output in a log file."""

    def __init__(
        self,
        name: str,
        command: List[str],
        env: Dict[str, str],
        log_dir: Path,
        cwd: Path = PROJECT_DIR,
    ) -> None:
        self.name = name
        self.command, self.env, self.cwd = command, env, cwd
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "w")
        self.process = self._spawn()

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def restart(self) -> None:
        """Stop what is left of the process, then start the same command again (log appended)."""
        self.stop()
        self._log = open(self.log_path, "a")
        self._log.write(f"\n--- restarted at {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n")
        self._log.flush()
        self.process = self._spawn()

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left."""
        if self.running():
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.process.pid, sig)
                    os.killpg(self.process.pid, signal.SIGCONT)  # a stopped one must see it
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        try:  # children that outlived the leader
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()


def wait_until_ready(url: str, process: ManagedProcess, timeout: float) -> float:
    """Poll `url` until it answers 200; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not process.running():
            raise RuntimeError(f"{process.name} exited early:\n{process.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{process.name} not ready after {timeout:.0f}s:\n{process.log_tail()}")


SHARED_LOCK_STORE = "bot.lock_store.SharedRedisLockStore"


def server_env(
    action_port: int, extra: Optional[Dict[str, str]] = None, rasa_servers: int = 1
) -> Dict[str, str]:
    """Environment shared by the servers: database, action server URL, quiet settings, and the
    lock store (Rasa's in-memory one for one Rasa server, Redis for several)."""
    from segmentation.config import database_url

    settings = {
        "DATABASE_URL": database_url(),
        "ACTION_SERVER_URL": f"http://{HOST}:{action_port}/webhook",
        "SANIC_HOST": HOST,
        "SANIC_REQUEST_MAX_SIZE": os.environ.get("SANIC_REQUEST_MAX_SIZE", MAX_REQUEST_BYTES),
        "SI_RASA_SERVERS": str(rasa_servers),
        "SI_LOCK_STORE": SHARED_LOCK_STORE if rasa_servers > 1 else "in_memory",
        "REDIS_URL": redis_url(),
    }
    settings.update({name: os.environ.get(name, v) for name, v in SERVER_DB_TIMEOUTS.items()})
    settings.update(extra or {})
    return rasa_env(settings)


def api_enabled(env: Dict[str, str]) -> bool:
    """The Rasa HTTP API is served only with a token (SI_API_TOKEN)."""
    return bool(env.get("SI_API_TOKEN", "").strip())


class Servers:
    """The action server and, unless `with_rasa=False`, the Rasa server (its HTTP API only with
    SI_API_TOKEN), or `rasa_servers` of them behind HAProxy on `rasa_port`."""

    def __init__(
        self,
        model: Optional[Path],
        rasa_port: int,
        action_port: int,
        credentials: Optional[Path] = None,
        extra_env: Optional[Dict[str, str]] = None,
        log_dir: Optional[Path] = None,
        timeout: float = 180.0,
        with_rasa: bool = True,
        rasa_servers: int = 1,
        backend_ports: Optional[List[int]] = None,
    ) -> None:
        self.model = model
        self.with_rasa = with_rasa
        self.rasa_port = rasa_port
        self.action_port = action_port
        self.credentials = credentials
        self.rasa_servers = rasa_servers
        if rasa_servers > 1:
            self.backend_ports = list(backend_ports or [free_port() for _ in range(rasa_servers)])
            if len(self.backend_ports) != rasa_servers:
                raise ValueError(f"{rasa_servers} Rasa servers need as many backend ports")
        else:
            self.backend_ports = [rasa_port]
        self.env = server_env(action_port, extra_env, rasa_servers)
        self.log_dir = log_dir or runtime_dir() / "logs"
        self.timeout = timeout
        self.processes: List[ManagedProcess] = []
        self.ready_seconds: Dict[str, float] = {}

    @property
    def rasa_url(self) -> str:
        return f"http://{HOST}:{self.rasa_port}"

    @property
    def action_url(self) -> str:
        return f"http://{HOST}:{self.action_port}"

    def backend_names(self) -> List[str]:
        """The names of the Rasa server processes: "rasa-server", or "rasa-server-1" ..."""
        if self.rasa_servers == 1:
            return ["rasa-server"]
        return [f"rasa-server-{i}" for i in range(1, self.rasa_servers + 1)]

    def backend_urls(self) -> Dict[str, str]:
        """Each Rasa server's own URL, by process name (one server: the Rasa URL)."""
        return {
            name: f"http://{HOST}:{port}"
            for name, port in zip(self.backend_names(), self.backend_ports)
        }

    def health_url(self, process: ManagedProcess) -> str:
        """Where `process` answers 200 when it is ready (Rasa's root route needs no API; the
        balancer answers its own monitor URI)."""
        if process.name == "action-server":
            return f"{self.action_url}/health"
        if process.name == "balancer":
            return f"{self.rasa_url}/balancer-health"
        return self.backend_urls()[process.name] + "/"

    def start_actions(self) -> None:
        actions = ManagedProcess(
            "action-server",
            [
                sys.executable,
                "-m",
                "rasa_sdk",
                "--actions",
                "actions",
                "--port",
                str(self.action_port),
            ],
            self.env,
            self.log_dir,
        )
        self.processes.append(actions)
        self.ready_seconds["actions"] = wait_until_ready(
            self.health_url(actions), actions, self.timeout
        )

    def start_rasa(self) -> None:
        """Start the Rasa server(s), and the balancer in front of several; wait until ready."""
        started = [self._spawn_rasa(name, port) for name, port in self._backends()]
        for rasa in started:  # they start in parallel
            url = self.health_url(rasa)
            self.ready_seconds[rasa.name] = wait_until_ready(url, rasa, self.timeout)
        self.ready_seconds["rasa"] = max(self.ready_seconds[r.name] for r in started)
        if self.rasa_servers > 1:
            self.start_balancer()

    def _backends(self):
        return list(zip(self.backend_names(), self.backend_ports))

    def start_balancer(self) -> None:
        """HAProxy on `rasa_port` in front of the Rasa servers (config in the log folder)."""
        config = balancer.write_config(self.log_dir, HOST, self.rasa_port, self.backend_ports)
        check = subprocess.run(
            [balancer.haproxy_binary(), "-c", "-q", "-f", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check.returncode != 0:
            raise RuntimeError(f"haproxy rejects {config}:\n{check.stdout}{check.stderr}")
        proxy = ManagedProcess("balancer", balancer.command(config), self.env, self.log_dir)
        self.processes.append(proxy)
        self.ready_seconds["balancer"] = wait_until_ready(f"{self.rasa_url}/", proxy, 30)

    def _spawn_rasa(self, name: str, port: int) -> ManagedProcess:
        command = [
            *rasa_command(),
            "run",
            *(["--enable-api"] if api_enabled(self.env) else []),
            "--interface",
            HOST,
            "--port",
            str(port),
            "--model",
            str(self.model),
            "--endpoints",
            "endpoints.yml",
            "--cors",
            f"http://{HOST}:{self.rasa_port}",
        ]
        if self.credentials:
            command += ["--credentials", str(self.credentials)]
        rasa = ManagedProcess(name, command, self.env, self.log_dir)
        self.processes.append(rasa)
        return rasa

    def start(self) -> "Servers":
        try:
            self.start_actions()
            if self.with_rasa:
                self.start_rasa()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def __enter__(self) -> "Servers":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
