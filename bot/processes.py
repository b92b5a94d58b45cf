"""Starting and stopping the action server and the Rasa server on loopback ports.

Each server runs in its own process group, so stopping it also stops anything it started;
`Servers` is a context manager that always stops what it started, on errors and Ctrl-C too.
`ManagedProcess.restart()` starts a server again with the same command (bot/supervisor.py).

The servers get short database time limits (`SERVER_DB_TIMEOUTS`, each overridable from the
environment), a 1 MB cap on request bodies (SANIC_REQUEST_MAX_SIZE), and the Rasa HTTP API
only when SI_API_TOKEN is set: then `--enable-api` with that token (bot/rasa_cli.py passes it
to Rasa, so it never shows in a process list). The channels never need the token.
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

from bot.environment import rasa_command, rasa_env
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


def server_env(action_port: int, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment shared by both servers: database, action server URL, quiet settings."""
    from segmentation.config import database_url

    settings = {
        "DATABASE_URL": database_url(),
        "ACTION_SERVER_URL": f"http://{HOST}:{action_port}/webhook",
        "SANIC_HOST": HOST,
        "SANIC_REQUEST_MAX_SIZE": os.environ.get("SANIC_REQUEST_MAX_SIZE", MAX_REQUEST_BYTES),
    }
    settings.update({name: os.environ.get(name, v) for name, v in SERVER_DB_TIMEOUTS.items()})
    settings.update(extra or {})
    return rasa_env(settings)


def api_enabled(env: Dict[str, str]) -> bool:
    """The Rasa HTTP API is served only with a token (SI_API_TOKEN)."""
    return bool(env.get("SI_API_TOKEN", "").strip())


class Servers:
    """The action server and, unless `with_rasa=False`, the Rasa server (its HTTP API only with
    SI_API_TOKEN)."""

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
    ) -> None:
        self.model = model
        self.with_rasa = with_rasa
        self.rasa_port = rasa_port
        self.action_port = action_port
        self.credentials = credentials
        self.env = server_env(action_port, extra_env)
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

    def health_url(self, process: ManagedProcess) -> str:
        """Where `process` answers 200 when it is ready (Rasa's root route needs no API)."""
        return f"{self.rasa_url}/" if process.name == "rasa-server" else f"{self.action_url}/health"

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
        command = [
            *rasa_command(),
            "run",
            *(["--enable-api"] if api_enabled(self.env) else []),
            "--interface",
            HOST,
            "--port",
            str(self.rasa_port),
            "--model",
            str(self.model),
            "--endpoints",
            "endpoints.yml",
            "--cors",
            f"http://{HOST}:{self.rasa_port}",
        ]
        if self.credentials:
            command += ["--credentials", str(self.credentials)]
        rasa = ManagedProcess("rasa-server", command, self.env, self.log_dir)
        self.processes.append(rasa)
        self.ready_seconds["rasa"] = wait_until_ready(f"{self.rasa_url}/", rasa, self.timeout)

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
