"""Memory stays bounded by the block size: a 256 MB file loads in a few tens of MB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.test_ingest_support import CLICKS_HEADER, table_counts

PROJECT = Path(__file__).resolve().parent.parent
FILE_MB = 256
BLOCK_BYTES = 2**20
# Reading the file whole would need more than the file's size (Python strings are bigger than
# their CSV text). Streaming 1 MB blocks grew the peak RSS by 25-45 MB here; the limit leaves room
# for allocator noise while staying far below the file's size.
MAX_GROWTH_MB = 96

CHILD = """
import json, resource, sys
from segmentation import db
from segmentation.ingest import ingest_csv
from segmentation.progress import set_quiet

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

set_quiet(True)
url, path, block_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
engine = db.get_engine(url)
with engine.connect():
    pass
baseline = peak_mb()
result = ingest_csv(engine, path, "clickstream", block_bytes=block_bytes)
print(json.dumps({"rows": result.rows, "baseline_mb": baseline, "peak_mb": peak_mb()}))
"""


def write_big_file(path: Path, megabytes: int) -> int:
    """Unique clicks with long urls (~1 kB a row) until the file is `megabytes` big."""
    padding = "x" * 400
    rows = 0
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(CLICKS_HEADER + "\n")
        while handle.tell() < megabytes * 2**20:
            lines = [
                f"u{(rows + i) % 5000},2026-10-{1 + (rows + i) % 28:02d} 10:00:00,"
                f"/p/{rows + i}/{padding},https://example.com/{padding},Web,s{rows + i},1.5\n"
                for i in range(10000)
            ]
            handle.writelines(lines)
            rows += len(lines)
    return rows


def test_a_file_much_larger_than_a_block_loads_in_bounded_memory(db_url, engine, tmp_path):
    path = tmp_path / "big.csv"
    rows = write_big_file(path, FILE_MB)
    try:
        child = subprocess.run(
            [sys.executable, "-c", CHILD, db_url, str(path), str(BLOCK_BYTES)],
            capture_output=True,
            text=True,
            cwd=PROJECT,
            timeout=900,
        )
        assert child.returncode == 0, child.stderr
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        assert figures["rows"] == rows
        assert table_counts(engine)["clickstream"] == rows
        growth = figures["peak_mb"] - figures["baseline_mb"]
        assert growth < MAX_GROWTH_MB, figures
    finally:
        path.unlink()
