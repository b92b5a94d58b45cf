"""One renderer for every channel: result objects -> a Reply -> each channel's markup.

`render(result)` builds the Reply (the CLI and the chat use the same one); `markup` writes it
as Slack mrkdwn, HTML, plain text or ANSI.
"""

from __future__ import annotations

from typing import Optional

from segmentation.query import Query
from segmentation.render import measures, runs, segments
from segmentation.render.advice import advice
from segmentation.render.document import Chart, Paragraph, Reply, Table
from segmentation.results import (
    DataInfo,
    Exported,
    Measured,
    Members,
    Migration,
    Overview,
    RunInfo,
    SegmentComparison,
    SegmentProfile,
    Trend,
    UserSegment,
)

__all__ = ["Chart", "Paragraph", "Reply", "Table", "advice", "render"]


def render(result, query: Optional[Query] = None) -> Reply:
    """The Reply for any query result; the query tells run results apart (quality, run info)
    and names the segments of a "moved from A to B" question."""
    measure = query.measure if query is not None else ""
    if isinstance(result, Measured):
        return measures.measured(result)
    if isinstance(result, Overview):
        return segments.overview(result)
    if isinstance(result, SegmentProfile):
        return advice(result) if measure == "advice" else segments.profile(result)
    if isinstance(result, SegmentComparison):
        return segments.comparison(result)
    if isinstance(result, Members):
        return segments.members(result)
    if isinstance(result, Exported):
        return segments.exported(result)
    if isinstance(result, UserSegment):
        return segments.user(result)
    if isinstance(result, Migration):
        pair = query.segments if query is not None and len(query.segments) == 2 else ("", "")
        return runs.changes(result, *pair)
    if isinstance(result, Trend):
        return runs.trend(result)
    if isinstance(result, DataInfo):
        return runs.data_info(result)
    if isinstance(result, RunInfo):
        return runs.quality(result) if measure == "quality" else runs.run_info(result)
    raise TypeError(f"nothing renders {type(result).__name__}")
