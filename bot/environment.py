"""Environment for Rasa processes: no telemetry, no noisy warnings."""

from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional

from segmentation.config import PROJECT_DIR

QUIET_SETTINGS = {
    # Users' data questions must not leave their network.
    "RASA_TELEMETRY_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "PYTHONWARNINGS": "ignore",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    "SI_QUIET": "1",
}


def rasa_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """os.environ plus the quiet settings, PYTHONPATH on the project, and `extra`."""
    env = dict(os.environ)
    env.update(QUIET_SETTINGS)
    paths = [str(PROJECT_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if extra:
        env.update(extra)
    return env


def rasa_command() -> List[str]:
    """The `rasa` command line of this venv, with warnings kept out of the terminal."""
    return [sys.executable, "-m", "bot.rasa_cli"]
