"""What the query layer returns. Every result carries the run it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Optional, Tuple


@dataclass(frozen=True)
class RunInfo:
    """A segmentation run: when, on what data, how, and how good."""

    id: int
    created_at: datetime
    finished_at: Optional[datetime]
    source: str
    algorithm: str
    k: int
    n_users: int
    data_as_of: Optional[datetime]
    status: str
    params: dict
    metrics: dict
    segment_names: Tuple[str, ...]

    @property
    def label(self) -> str:
        """e.g. "run #7 of 23 Nov 2026 13:05 UTC"."""
        return f"run #{self.id} of {self.created_at:%d %b %Y %H:%M} UTC"

    def feature_label(self, feature: str) -> str:
        return self.params.get("labels", {}).get(feature, feature)

    def feature_unit(self, feature: str) -> str:
        return self.params.get("units", {}).get(feature, "")

    def lower_is_better(self, feature: str) -> bool:
        return feature in self.params.get("lower_is_better", [])

    @property
    def features(self) -> List[str]:
        return list(self.params.get("features", []))


@dataclass(frozen=True)
class SegmentSummary:
    name: str
    rank: int
    size: int
    share: float
    score: float
    means: Dict[str, float]
    medians: Dict[str, float]


@dataclass(frozen=True)
class FeatureComparison:
    """One feature: a value against a reference (the overall or a segment average)."""

    feature: str
    label: str
    unit: str
    value: float
    reference: float
    lower_is_better: bool

    @property
    def ratio(self) -> Optional[float]:
        return None if self.reference == 0 else self.value / self.reference


@dataclass(frozen=True)
class Overview:
    run: RunInfo
    total_users: int
    segments: List[SegmentSummary]
    overall_means: Dict[str, float]
    query: Any = None  # the Query it answers (its filters), when it came from a question


@dataclass(frozen=True)
class SegmentSize:
    run: RunInfo
    segment: str
    size: int
    share: float
    total_users: int


@dataclass(frozen=True)
class SegmentProfile:
    run: RunInfo
    segment: SegmentSummary
    features: List[FeatureComparison]  # segment mean vs overall mean, biggest difference first
    query: Any = None


@dataclass(frozen=True)
class SegmentComparison:
    run: RunInfo
    first: SegmentSummary
    second: SegmentSummary
    features: List[FeatureComparison]  # value: first's mean, reference: second's mean
    query: Any = None


@dataclass(frozen=True)
class MetricBySegment:
    run: RunInfo
    feature: str
    label: str
    unit: str
    lower_is_better: bool
    means: Dict[str, float]  # by segment, in rank order
    medians: Dict[str, float]
    overall_mean: float

    def leader(self) -> str:
        """The segment with the highest mean."""
        return max(self.means, key=self.means.get)


@dataclass(frozen=True)
class UserSegment:
    """A user's segment and why: features vs the segment average, distance to each centre."""

    run: RunInfo
    user_id: str
    segment: str
    score: float
    features: List[FeatureComparison]
    distances: List[Tuple[str, float]]  # nearest first
    previous_run: Optional[RunInfo] = None
    previous_segment: Optional[str] = None
    # Features that changed most since the previous run (value: now, reference: before),
    # in the current model's scaled units: what drove a move.
    changes: List[FeatureComparison] = field(default_factory=list)

    @property
    def moved(self) -> bool:
        return self.previous_segment is not None and self.previous_segment != self.segment


@dataclass(frozen=True)
class Member:
    user_id: str
    score: float
    features: Dict[str, float]
    segment: str = ""
    attributes: Dict[str, Optional[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Members:
    run: RunInfo
    segment: str
    total: int
    offset: int
    order: str  # "most" or "least" engaged first
    members: List[Member]
    query: Any = None


@dataclass(frozen=True)
class Exported:
    """Every user a list question asks for, written to a CSV file (`file` is its name in the
    exports folder, `path` where it is)."""

    run: RunInfo
    rows: int
    file: str
    path: str
    query: Any = None


@dataclass(frozen=True)
class Breakdown:
    run: RunInfo
    segment: str
    dimension: str
    segment_size: int
    counts: List[Tuple[str, int]]  # value -> users of the segment, largest first
    value: Optional[str] = None
    value_count: Optional[int] = None


@dataclass(frozen=True)
class Migration:
    """How users moved between two runs (matched on user_id)."""

    from_run: RunInfo
    to_run: RunInfo
    counts: Dict[Tuple[str, str], int]
    new_users: Dict[str, int] = field(default_factory=dict)
    gone_users: Dict[str, int] = field(default_factory=dict)

    def moved(self) -> int:
        return sum(n for (a, b), n in self.counts.items() if a != b)

    def between(self, source: str, target: str) -> int:
        return self.counts.get((source, target), 0)


@dataclass(frozen=True)
class Group:
    """One group of a measured answer: its key values, users, and the measured value."""

    key: Tuple[Any, ...]  # values of the query's group_by keys (segment names, countries...)
    n: int  # users of the asked segments matching the filters, in this group
    value: Optional[float] = None  # the statistic (mean, median...) when one was asked
    base: int = 0  # users matching the filters in this group, in every segment

    @property
    def share_of_base(self) -> Optional[float]:
        return self.n / self.base if self.base else None


@dataclass(frozen=True)
class Measured:
    """A count, share or statistic, possibly grouped and ranked (see segmentation.query)."""

    run: RunInfo
    query: Any  # segmentation.query.Query
    groups: List[Group]  # one per group; a single group with key () when not grouped
    total: Group  # every asked user together (value: the statistic over all of them)
    population: Group  # users matching the filters in every segment (the reference)
    segment_sizes: Dict[str, int]  # each asked segment's whole size (no filters)

    def ranked(self) -> List[Group]:
        """Groups from the most to the least (by value, by share when asked, else by users)."""
        query = self.query
        if query.features:
            key = lambda g: (g.value is not None, g.value if g.value is not None else 0.0)  # noqa
        elif query.measure == "share" and query.group_by and query.group_by[0] != "segment":
            key = lambda g: (g.base > 0, g.share_of_base or 0.0)  # noqa: E731
        else:
            key = lambda g: (True, g.n)  # noqa: E731
        ordered = sorted(self.groups, key=key, reverse=True)
        if query.rank == "least":
            usable = [g for g in ordered if key(g)[0]]
            ordered = list(reversed(usable)) + [g for g in ordered if not key(g)[0]]
        return ordered


@dataclass(frozen=True)
class Trend:
    """Segment sizes over runs (oldest first)."""

    runs: List[RunInfo]
    sizes: Dict[int, Dict[str, int]]  # run id -> segment -> users matching the filters
    totals: Dict[int, int]  # run id -> users matching the filters
    query: Any
    skipped: List[RunInfo] = field(default_factory=list)  # runs that can't apply the filters


@dataclass(frozen=True)
class DataInfo:
    """What a run is built from: its features, and the attributes and values of its users."""

    run: RunInfo
    features: List[Tuple[str, str]]  # (name, readable label)
    attributes: Dict[str, List[Tuple[Optional[str], int]]]  # attribute -> (value, users)
    asked: Optional[str] = None  # the attribute asked about, if any
