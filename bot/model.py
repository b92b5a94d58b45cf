"""Train the assistant only when its training data changed; reuse the model otherwise."""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
from pathlib import Path
from typing import Iterable, List, Optional

from bot.environment import rasa_command, rasa_env
from segmentation.config import PROJECT_DIR

MODEL_PREFIX = "segment-insights-"


def training_files(project: Path = PROJECT_DIR) -> List[Path]:
    """domain.yml, config.yml and everything under data/ (the model's inputs)."""
    files = [project / "domain.yml", project / "config.yml"]
    files += sorted(p for p in (project / "data").rglob("*") if p.is_file())
    return files


def fingerprint(files: Iterable[Path], project: Path = PROJECT_DIR) -> str:
    """A hash of the training inputs (names and contents) and the Rasa version."""
    import rasa

    digest = hashlib.sha256(rasa.__version__.encode())
    for path in files:
        digest.update(str(path.relative_to(project)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def models_dir(project: Path = PROJECT_DIR) -> Path:
    path = project / "models"
    path.mkdir(exist_ok=True)
    return path


def current_model_path(project: Path = PROJECT_DIR) -> Path:
    """Where the model for the current training data lives (it may not exist yet)."""
    name = MODEL_PREFIX + fingerprint(training_files(project), project)
    return models_dir(project) / f"{name}.tar.gz"


def train_command(out_dir: Path, name: Optional[str] = None) -> List[str]:
    """`rasa train` of the project's domain, config and data into `out_dir`."""
    command = [*rasa_command(), "train", "--domain", "domain.yml", "--config", "config.yml"]
    command += ["--data", "data", "--out", str(out_dir)]
    return command + (["--fixed-model-name", name] if name else [])


def ensure_model(project: Path = PROJECT_DIR, quiet: bool = False) -> Path:
    """Return the up-to-date model, training it first when the data changed."""
    target = current_model_path(project)
    with open(models_dir(project) / ".train.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        if not quiet:
            print(
                "Training the assistant (about a minute and a half; only when its data changed)..."
            )
        command = train_command(models_dir(project), target.name[: -len(".tar.gz")])
        result = subprocess.run(
            command,
            cwd=project,
            env=rasa_env(),
            stdout=subprocess.DEVNULL if quiet else None,
            stderr=subprocess.PIPE,
            text=True,
        )
        if result.returncode != 0 or not target.exists():
            raise RuntimeError(f"rasa train failed:\n{result.stderr[-4000:]}")
        for old in models_dir(project).glob(f"{MODEL_PREFIX}*.tar.gz"):
            if old != target:  # models of older training data are never used again
                old.unlink()
        return target
