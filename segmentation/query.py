"""The query model: every data question is one `Query`, whatever channel it came from.

A query names a measure (count, share, mean, median, min, max, sum, a list of users, a
profile, a comparison...), optionally a feature, the segments it is about (none = all), the
filters on user attributes, how to group and rank, and the run. `segmentation.answering`
runs it; `segmentation.render` says it back in words. Queries are plain data: they travel in
a Rasa slot as JSON (for follow-ups) and in button payloads.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import Any, Dict, Optional, Tuple, Union

# Measures over users of a run.
COUNT_MEASURES = ("count", "share")
STAT_MEASURES = ("mean", "median", "min", "max", "sum")
MEASURES = (
    COUNT_MEASURES
    + STAT_MEASURES
    + (
        "list",  # users, ordered by the engagement score or by a feature
        "overview",  # every segment: size, share, what stands out
        "profile",  # a segment's averages against everyone's
        "compare",  # two (or more) segments side by side
        "advice",  # how to target a segment, from its numbers
        "user",  # one user's segment and why
    )
)
# Questions about runs and the data rather than about users.
RUN_MEASURES = ("changes", "trend", "run_info", "quality", "data_info")
ALL_MEASURES = MEASURES + RUN_MEASURES
DIRECTIONS = ("most", "least")
RunRef = Union[None, int, str]  # None: the current run; "previous"; "all"; or a run id


@dataclass(frozen=True)
class Filter:
    """Users whose `attribute` is one of `values` (categories), or whose date is in
    [start, end) (the signup date). `said` is the user's own words, for restating."""

    attribute: str
    values: Tuple[str, ...] = ()
    start: Optional[date] = None
    end: Optional[date] = None
    said: str = ""
    exclude: bool = False  # every user except those with these values (unknown ones included)

    @property
    def is_date(self) -> bool:
        return not self.values

    def to_json(self) -> Dict[str, Any]:
        data = {"attribute": self.attribute, "said": self.said}
        if self.exclude:
            data["exclude"] = True
        if self.values:
            data["values"] = list(self.values)
        if self.start:
            data["start"] = self.start.isoformat()
        if self.end:
            data["end"] = self.end.isoformat()
        return data

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "Filter":
        return cls(
            attribute=str(data["attribute"]),
            values=tuple(str(v) for v in data.get("values", ())),
            start=date.fromisoformat(data["start"]) if data.get("start") else None,
            end=date.fromisoformat(data["end"]) if data.get("end") else None,
            said=str(data.get("said", "")),
            exclude=bool(data.get("exclude", False)),
        )


@dataclass(frozen=True)
class Query:
    """One question about the segmentation data, in structured form."""

    measure: str = "overview"
    features: Tuple[str, ...] = ()
    segments: Tuple[str, ...] = ()  # the run's own names; empty = every segment
    filters: Tuple[Filter, ...] = ()
    group_by: Tuple[str, ...] = ()  # "segment", an attribute, "signup_month"/"signup_year"
    rank: Optional[str] = None  # "most"/"least": which group has the most/least
    order: str = "most"  # lists: most engaged (or highest feature) first
    limit: int = 10
    offset: int = 0
    top: Optional[int] = None  # ranked groups: only the first N ("top 3 countries")
    run: RunRef = None
    user_id: Optional[str] = None
    chart: bool = False
    export: bool = False  # lists: every matching user, as a CSV file
    extras: Dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.measure not in ALL_MEASURES:
            raise ValueError(f"unknown measure {self.measure!r}")
        if self.rank is not None and self.rank not in DIRECTIONS:
            raise ValueError(f"unknown direction {self.rank!r}")
        if self.order not in DIRECTIONS:
            raise ValueError(f"unknown order {self.order!r}")
        if self.export and self.measure != "list":
            raise ValueError("only a list of users can be exported")

    @property
    def feature(self) -> Optional[str]:
        return self.features[0] if self.features else None

    def filter_on(self, attribute: str) -> Optional[Filter]:
        return next((f for f in self.filters if f.attribute == attribute), None)

    def with_(self, **changes: Any) -> "Query":
        return replace(self, **changes)

    # --- JSON (slots, button payloads) -----------------------------------------------------
    def to_json(self) -> Dict[str, Any]:
        data = asdict(self)
        data["filters"] = [f.to_json() for f in self.filters]
        for key in ("features", "segments", "group_by"):
            data[key] = list(data[key])
        data.pop("extras", None)
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "Query":
        run = data.get("run")
        if isinstance(run, str) and run.isdigit():
            run = int(run)
        return cls(
            measure=str(data.get("measure", "overview")),
            features=tuple(str(f) for f in data.get("features", ())),
            segments=tuple(str(s) for s in data.get("segments", ())),
            filters=tuple(Filter.from_json(f) for f in data.get("filters", ())),
            group_by=tuple(str(g) for g in data.get("group_by", ())),
            rank=data.get("rank"),
            order=str(data.get("order", "most")),
            limit=int(data.get("limit", 10)),
            offset=int(data.get("offset", 0)),
            top=int(data["top"]) if data.get("top") else None,
            run=run,
            user_id=data.get("user_id"),
            chart=bool(data.get("chart", False)),
            export=bool(data.get("export", False)),
        )

    @classmethod
    def loads(cls, text: str) -> "Query":
        return cls.from_json(json.loads(text))


WHERE = re.compile(r"^\s*([a-z_]+)\s*(!=|>=|<=|=|<|>)\s*(.+?)\s*$")


def parse_where(text: str) -> Filter:
    """A filter written on a command line: "country=DE,FR", "device!=iOS",
    "signup_date>=2026-01-01", "signup_date<2026-06-01"."""
    match = WHERE.match(text)
    if not match:
        raise ValueError(f"cannot read the filter {text!r}: write attribute=value")
    attribute, operator, value = match.groups()
    if attribute == "signup_date":
        day = date.fromisoformat(value)
        if operator in (">=", ">"):
            return Filter(attribute, start=day if operator == ">=" else _next_day(day), said=text)
        if operator in ("<", "<="):
            return Filter(attribute, end=day if operator == "<" else _next_day(day), said=text)
        return Filter(attribute, start=day, end=_next_day(day), said=text)
    if operator not in ("=", "!="):
        raise ValueError(f"{attribute} takes = or !=, not {operator}")
    values = tuple(v.strip() for v in value.split(",") if v.strip())
    return Filter(attribute, values, said=text, exclude=operator == "!=")


def _next_day(day: date) -> date:
    return date.fromordinal(day.toordinal() + 1)
