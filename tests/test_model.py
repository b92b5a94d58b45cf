"""The assistant is retrained only when its training data changes."""

import shutil

from bot.model import current_model_path, fingerprint, training_files
from segmentation.config import PROJECT_DIR


def copy_project(tmp_path):
    for name in ("domain.yml", "config.yml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    shutil.copytree(PROJECT_DIR / "data", tmp_path / "data")
    return tmp_path


def test_fingerprint_follows_the_training_data(tmp_path):
    project = copy_project(tmp_path)
    before = current_model_path(project)
    assert current_model_path(project) == before  # stable when nothing changed
    assert before.parent == project / "models" and before.name.startswith("segment-insights-")
    nlu = next((project / "data" / "nlu").glob("*.yml"))
    nlu.write_text(nlu.read_text() + "\n# a comment changes the data\n")
    assert current_model_path(project) != before
    files = [p.relative_to(project).as_posix() for p in training_files(project)]
    assert files[:2] == ["domain.yml", "config.yml"] and any(
        f.startswith("data/nlu/") for f in files
    )
    assert fingerprint(training_files(project), project) == current_model_path(project).name[17:33]
