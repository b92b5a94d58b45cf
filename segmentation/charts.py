"""Charts as matplotlib PNGs: segment sizes, a segment's profile, a comparison, a PCA scatter."""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path
from typing import List, Optional, Sequence

with warnings.catch_warnings():  # matplotlib 3.5 + pyparsing 3 warn on import
    warnings.simplefilter("ignore")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
import numpy as np  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from segmentation.config import charts_dir, file_in  # noqa: E402
from segmentation.query import Query  # noqa: E402
from segmentation.results import (  # noqa: E402
    FeatureComparison,
    Measured,
    Overview,
    SegmentComparison,
    SegmentProfile,
    Trend,
)

COLOURS = {
    "Low Engagement": "#d95f02",
    "Moderate Engagement": "#7570b3",
    "Highly Engaged": "#1b9e77",
}
FALLBACK = ["#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]


def colour(name: str, rank: int) -> str:
    return COLOURS.get(name, FALLBACK[rank % len(FALLBACK)])


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def save_figure(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def sizes_chart(overview: Overview, path: Path) -> Path:
    """Horizontal bars: users per segment, with counts and shares."""
    figure, axis = plt.subplots(figsize=(6.4, 2.8))
    names = [s.name for s in overview.segments]
    sizes = [s.size for s in overview.segments]
    bars = axis.barh(names, sizes, color=[colour(s.name, s.rank) for s in overview.segments])
    for bar, segment in zip(bars, overview.segments):
        axis.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f" {segment.size:,} ({segment.share:.1%})",
            va="center",
        )
    axis.set_xlim(0, max(sizes) * 1.35)
    axis.set_xlabel("users")
    axis.set_title(f"Segment sizes\n{overview.run.label}", fontsize=10)
    return save_figure(figure, path)


def _index(items: Sequence[FeatureComparison]) -> np.ndarray:
    """Each value as % of its reference (100 = same)."""
    return np.array(
        [100.0 * i.value / i.reference if i.reference else 100.0 for i in items], dtype=float
    )


def profile_chart(profile: SegmentProfile, path: Path) -> Path:
    """Bars: the segment's average of each feature as % of the overall average."""
    items = sorted(profile.features, key=lambda i: i.label)
    figure, axis = plt.subplots(figsize=(6.4, 0.45 * len(items) + 1.2))
    values = _index(items)
    axis.barh(
        [i.label for i in items], values, color=colour(profile.segment.name, profile.segment.rank)
    )
    axis.axvline(100, color="black", linewidth=0.8)
    axis.set_xlabel("% of the average user (100 = average)")
    axis.set_title(f"{profile.segment.name} profile\n{profile.run.label}", fontsize=10)
    return save_figure(figure, path)


def comparison_chart(comparison: SegmentComparison, path: Path) -> Path:
    """Grouped bars: both segments' averages, as % of the larger of the two per feature."""
    items = sorted(comparison.features, key=lambda i: i.label)
    first = np.array([i.value for i in items])
    second = np.array([i.reference for i in items])
    scale = np.maximum(np.maximum(np.abs(first), np.abs(second)), 1e-12)
    positions = np.arange(len(items))
    figure, axis = plt.subplots(figsize=(6.4, 0.5 * len(items) + 1.4))
    axis.barh(
        positions - 0.2,
        100 * first / scale,
        height=0.4,
        label=comparison.first.name,
        color=colour(comparison.first.name, comparison.first.rank),
    )
    axis.barh(
        positions + 0.2,
        100 * second / scale,
        height=0.4,
        label=comparison.second.name,
        color=colour(comparison.second.name, comparison.second.rank),
    )
    axis.set_yticks(positions, [i.label for i in items])
    axis.set_xlabel("% of the higher of the two")
    axis.legend(loc="lower right", fontsize=8)
    axis.set_title(
        f"{comparison.first.name} vs {comparison.second.name}\n{comparison.run.label}", fontsize=10
    )
    return save_figure(figure, path)


def pca_chart(
    values: np.ndarray, segments: Sequence[str], names: Sequence[str], title: str, path: Path
) -> Path:
    """A 2-D PCA scatter of users (already in the clustering space), coloured by segment."""
    points = PCA(n_components=2, random_state=0).fit_transform(values)
    figure, axis = plt.subplots(figsize=(6.4, 5.0))
    labels = np.asarray(segments)
    for rank, name in enumerate(names):
        mask = labels == name
        axis.scatter(
            points[mask, 0], points[mask, 1], s=6, alpha=0.5, label=name, color=colour(name, rank)
        )
    axis.set_xlabel("PC 1")
    axis.set_ylabel("PC 2")
    axis.legend(markerscale=3, fontsize=8)
    axis.set_title(title, fontsize=10)
    return save_figure(figure, path)


CHART_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.png$")


def saved_chart(name: str, folder: Optional[Path] = None) -> Optional[Path]:
    """The chart file called `name` in the charts folder, or None (never outside it, never a
    symlink out of it, only PNGs)."""
    return file_in(folder or charts_dir(), name, CHART_FILE_NAME)


def _digest(result, query) -> str:
    """A short stable name for a query's filters and groups (charts of filtered answers)."""
    if query is None:
        return ""
    if isinstance(result, Measured):
        key = query.dumps()
    elif query.filters:
        key = json.dumps([f.to_json() for f in query.filters], sort_keys=True)
    else:
        return ""
    return "-" + hashlib.sha1(key.encode()).hexdigest()[:10]


def measured_chart(result: Measured, path: Path) -> Path:
    """Bars: the users (or the statistic) of each group."""
    query = result.query
    labels = [" / ".join(str(v) for v in g.key) or "all" for g in result.groups]
    values = [g.value if query.features else g.n for g in result.groups]
    values = [v or 0.0 for v in values]
    figure, axis = plt.subplots(figsize=(6.4, 0.4 * len(labels) + 1.4))
    axis.barh(labels, values, color=[FALLBACK[i % len(FALLBACK)] for i in range(len(labels))])
    axis.set_xlabel(result.run.feature_label(query.feature) if query.features else "users")
    axis.set_title(f"{chart_title(result)}\n{result.run.label}", fontsize=10)
    return save_figure(figure, path)


def trend_chart(result: Trend, path: Path) -> Path:
    """Lines: each segment's users in each run (oldest first)."""
    figure, axis = plt.subplots(figsize=(6.4, 3.4))
    names = []
    for run in result.runs:
        names += [n for n in run.segment_names if n not in names]
    x = [f"#{run.id}\n{run.created_at:%d %b}" for run in result.runs]
    for rank, name in enumerate(names):
        y = [result.sizes[run.id].get(name) for run in result.runs]
        axis.plot(x, y, marker="o", label=name, color=colour(name, rank))
    axis.set_ylabel("users")
    axis.legend(fontsize=8)
    axis.set_title(chart_title(result), fontsize=10)
    return save_figure(figure, path)


def chart_title(result) -> str:
    """What a chart shows, in words (channels show it; they never guess it from file names)."""
    if isinstance(result, Overview):
        return "Segment sizes"
    if isinstance(result, SegmentProfile):
        return f"{result.segment.name} against the average user"
    if isinstance(result, SegmentComparison):
        return f"{result.first.name} vs {result.second.name}"
    if isinstance(result, Trend):
        return "Segment sizes over runs"
    if isinstance(result, Measured):
        query = result.query
        what = result.run.feature_label(query.feature) if query.features else "Users"
        keys = " and ".join(query.group_by) or "all"
        return f"{what} by {keys}"
    return "Chart"


def chart_for(result, folder: Path) -> Path:
    """The chart of a query result, drawn once and reused: `run<id>-<kind>[-<digest>].png`."""
    query = getattr(result, "query", None)
    if isinstance(result, Overview):
        name, draw = "sizes", sizes_chart
    elif isinstance(result, SegmentProfile):
        name, draw = f"profile-{slug(result.segment.name)}", profile_chart
    elif isinstance(result, SegmentComparison):
        name = f"compare-{slug(result.first.name)}-{slug(result.second.name)}"
        draw = comparison_chart
    elif isinstance(result, Measured):
        name, draw = "measure", measured_chart
    elif isinstance(result, Trend):
        name, draw = f"trend-to-{result.runs[-1].id}", trend_chart
    else:
        raise TypeError(f"no chart for {type(result).__name__}")
    run_id = result.runs[-1].id if isinstance(result, Trend) else result.run.id
    path = folder / f"run{run_id}-{name}{_digest(result, query)}.png"
    if not path.exists():
        draw(result, path)
    return path


def write_run_charts(queries, out_dir: Path, sample: int = 5000) -> List[Path]:
    """Every chart for the current run: sizes, one profile per segment, and the PCA scatter."""
    overview = queries.overview()
    run = overview.run
    paths = [chart_for(overview, out_dir)]
    paths += [
        chart_for(queries.answer(Query("profile", segments=(s.name,))), out_dir)
        for s in overview.segments
    ]
    scaled, segments = queries.sample_scaled_users(sample)
    title = f"Users by segment (PCA)\n{run.label}"
    paths.append(
        pca_chart(scaled, segments, run.segment_names, title, out_dir / f"run{run.id}-pca.png")
    )
    return paths
