"""`compare` scores every algorithm with the same metrics; charts are real PNGs."""

from pathlib import Path

import pytest

from segmentation.build import build_segments
from segmentation.charts import write_run_charts
from segmentation.cli import main
from segmentation.clustering import ClusterSettings
from segmentation.compare import ALGORITHMS, compare_algorithms
from segmentation.queries import SegmentQueries
from tests.factories import load_population, tiered_population

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def population(engine):
    load_population(engine, tiered_population(40))
    return engine


def test_compare_scores_every_algorithm(population):
    table = compare_algorithms(population, k=3, sample=100)
    assert list(table.algorithm) == list(ALGORITHMS)
    kmeans = table.set_index("algorithm").loc["KMeans"]
    assert kmeans.users == 120 and kmeans.clusters == 3 and kmeans.noise_share == 0
    assert 0.5 < kmeans.silhouette <= 1 and kmeans.davies_bouldin > 0
    sampled = table.set_index("algorithm").loc["Agglomerative (Ward)"]
    assert sampled.users == 100
    assert table.seconds.ge(0).all()


def test_compare_cli_writes_chart(population, db_url, tmp_path, capsys):
    chart = tmp_path / "compare.png"
    code = main(
        ["--quiet", "--database-url", db_url, "compare", "--sample", "90", "--chart", str(chart)]
    )
    assert code == 0
    out = capsys.readouterr().out
    for name in ALGORITHMS:
        assert name in out
    assert chart.read_bytes().startswith(PNG_MAGIC)


def test_run_charts(population, tmp_path):
    build_segments(population, ClusterSettings(n_init=2, stability_runs=1))
    paths = write_run_charts(SegmentQueries(engine=population), tmp_path)
    names = sorted(Path(p).name for p in paths)
    assert names == [
        "run1-pca.png",
        "run1-profile-highly-engaged.png",
        "run1-profile-low-engagement.png",
        "run1-profile-moderate-engagement.png",
        "run1-sizes.png",
    ]
    for path in paths:
        data = Path(path).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
