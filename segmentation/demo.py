"""The demo, built one way: generate the synthetic CSVs, load them, build a run.

`python -m segmentation demo`, `python -m bot chat` (when there is no run yet), the tests and the
benchmarks all call `load_demo` / `build_demo`; `python -m segmentation generate` writes the same
files without loading them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Optional

from sqlalchemy.engine import Engine

from segmentation.config import runtime_dir
from segmentation.demo_data import generate_demo_data


def demo_folder(users: int, seed: int) -> Path:
    """Where the demo's CSVs go by default (var/demo-data/<users>-users-seed<seed>)."""
    return runtime_dir() / "demo-data" / f"{users}-users-seed{seed}"


def load_demo(
    engine: Engine,
    users: int,
    seed: int = 42,
    out_dir: Optional[Path] = None,
    say: Callable[[str], None] = lambda line: None,
) -> Dict[str, Path]:
    """Generate the demo CSVs for `users` users and load them (a file already loaded is
    skipped). Returns {table: path}."""
    from segmentation.ingest import ingest_csv

    folder = Path(out_dir) if out_dir else demo_folder(users, seed)
    say(f"Generating demo data for {users:,} users in {folder}")
    files = generate_demo_data(folder, users, seed=seed)
    for table, path in files.items():
        result = ingest_csv(engine, path, table)
        state = "already loaded" if result.skipped_as_duplicate_file else "loaded"
        say(f"  {table}: {result.rows:,} rows {state}")
    return files


def build_demo(
    engine: Engine,
    users: int,
    seed: int = 42,
    settings=None,
    out_dir: Optional[Path] = None,
    say: Callable[[str], None] = lambda line: None,
):
    """load_demo, then a segmentation run over it: the BuildResult."""
    from segmentation.build import build_segments

    load_demo(engine, users, seed, out_dir, say)
    return build_segments(engine, settings)
