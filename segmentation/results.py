"""What the query layer returns. Every result carries the run it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Dict, List, Optional, Tuple


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


@dataclass(frozen=True)
class SegmentComparison:
    run: RunInfo
    first: SegmentSummary
    second: SegmentSummary
    features: List[FeatureComparison]  # value: first's mean, reference: second's mean


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

    @property
    def moved(self) -> bool:
        return self.previous_segment is not None and self.previous_segment != self.segment


@dataclass(frozen=True)
class Member:
    user_id: str
    score: float
    features: Dict[str, float]


@dataclass(frozen=True)
class Members:
    run: RunInfo
    segment: str
    total: int
    offset: int
    order: str  # "most" or "least" engaged first
    members: List[Member]


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
