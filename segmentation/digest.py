"""The digest: the current run's sizes, what changed since the previous run, and its quality,
as one message (the same answers and renderer the chat uses), with the trend chart."""

from __future__ import annotations

from typing import Optional, Tuple

from segmentation.config import charts_dir
from segmentation.queries import SegmentQueries
from segmentation.query import Query
from segmentation.render import render
from segmentation.render.alerts import digest
from segmentation.render.document import Chart, Reply


def build_digest(queries: SegmentQueries) -> Tuple[Reply, Optional[Chart]]:
    """The digest Reply and the trend chart (None with a single run)."""
    current = queries.current_run()
    parts = [render(queries.answer(Query("overview")))]
    if queries.previous_run(current) is not None:
        changes = Query("changes")
        parts.append(render(queries.answer(changes), changes))
    quality = Query("quality")
    parts.append(render(queries.answer(quality), quality))
    chart = None
    trend = queries.answer(Query("trend"))
    if len(trend.runs) >= 2:
        from segmentation.charts import chart_for, chart_title

        chart = Chart(chart_title(trend), str(chart_for(trend, charts_dir())))
    return digest(parts, f"Segment digest: {current.label}"), chart
