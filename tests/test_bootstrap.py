"""scripts/bootstrap finds a Python 3.8-3.10 by itself, and says clearly when there is none."""

import subprocess
import sys
from pathlib import Path

import pytest

from segmentation.config import PROJECT_DIR

BOOTSTRAP = str(PROJECT_DIR / "scripts" / "bootstrap")


def test_the_venv_runs_a_supported_python():
    assert (3, 8) <= sys.version_info[:2] <= (3, 10)  # the suite itself runs in its venv


def test_no_supported_python_is_a_clear_error(tmp_path):
    if any(Path(f"/usr/bin/python3.{minor}").exists() for minor in (8, 9, 10)):
        pytest.skip("this machine has a supported Python in /usr/bin")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SI_CACHE_DIR": str(tmp_path)}
    result = subprocess.run([BOOTSTRAP], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "no Python 3.8-3.10 interpreter found" in result.stderr
    assert "PYTHON=/path/to/python3.10" in result.stderr
    assert not list(tmp_path.glob("venv-*"))  # nothing half-made


def test_an_unsupported_python_is_refused(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHON": "/usr/bin/false"}
    result = subprocess.run([BOOTSTRAP], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "PYTHON=/usr/bin/false is not a Python 3.8-3.10 interpreter" in result.stderr
