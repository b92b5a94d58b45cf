"""HAProxy in front of several Rasa servers: its config, rendered from deploy/haproxy.cfg.tmpl.

The project does not balance load itself: `python -m bot serve --rasa-servers N` runs Debian's
HAProxy (scripts/ensure-haproxy installs it) as a child process in the foreground (`-db`),
listening on loopback only, with the config rendered into the runtime folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import List, Sequence

from segmentation.config import PROJECT_DIR

TEMPLATE = PROJECT_DIR / "deploy" / "haproxy.cfg.tmpl"
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])


def haproxy_binary() -> str:
    """The haproxy executable (HAPROXY, else on PATH or in /usr/sbin); RuntimeError with what to
    do when there is none."""
    found = os.environ.get("HAPROXY") or shutil.which("haproxy", path=SEARCH_PATH)
    if not found or not os.access(found, os.X_OK):
        raise RuntimeError(
            "haproxy is not installed; several Rasa servers need it as their load balancer. "
            "Run scripts/ensure-haproxy (or apt-get install --no-install-recommends haproxy)."
        )
    return found


def render(host: str, port: int, backends: Sequence[int], template: Path = TEMPLATE) -> str:
    """The HAProxy config: listen on host:port, one `server rasa-<i>` line per backend port."""
    servers = "\n".join(
        f"    server rasa-{i} {host}:{backend}" for i, backend in enumerate(backends, 1)
    )
    return template.read_text().format(host=host, port=port, servers=servers)


def write_config(folder: Path, host: str, port: int, backends: Sequence[int]) -> Path:
    """Render the config into `folder`/haproxy.cfg; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "haproxy.cfg"
    path.write_text(render(host, port, backends))
    return path


def command(config: Path) -> List[str]:
    """HAProxy in the foreground (-db) on `config`, checked first by `-c` in `check()`."""
    return [haproxy_binary(), "-db", "-f", str(config)]
