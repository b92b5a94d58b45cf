"""Driving a terminal program in a pseudo-terminal, like a person at a keyboard."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import time
from pathlib import Path
from typing import Dict, List, Sequence

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class Terminal:
    """A child process attached to a pty as its controlling terminal."""

    def __init__(self, argv: Sequence[str], env: Dict[str, str], cwd: Path) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            os.chdir(cwd)
            os.execvpe(argv[0], list(argv), env)
        self.output = ""  # what the terminal shows: escape sequences removed
        self.raw = ""  # what the program wrote, escape sequences included

    def read(self, timeout: float = 0.2) -> str:
        chunks: List[str] = []
        while True:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                break
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data.decode("utf-8", errors="replace"))
        self.raw += "".join(chunks)
        text = ANSI.sub("", "".join(chunks))
        self.output += text
        return text

    def expect(self, pattern: str, timeout: float) -> re.Match:
        """Wait until `pattern` appears in the output since the start; return the match."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            self.read()
            if self.exited():
                break
        raise AssertionError(f"{pattern!r} not seen in {timeout}s; output:\n{self.output[-3000:]}")

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def exited(self) -> bool:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid:
            self.status = status
            return True
        return False

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read(0.1)
            if self.exited():
                return
        raise AssertionError(f"did not exit in {timeout}s; output:\n{self.output[-3000:]}")

    def kill(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def processes_with(tag: str) -> List[int]:
    """PIDs of live processes whose environment contains `tag`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except (OSError, IndexError):
            continue
        if tag.encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found
