"""Alerts: after a refresh, tell a Slack channel (or the log) when a segment moved.

A segment moved when, between the previous run and the current one, its share of users changed
by at least `share_points` percentage points or its size by at least `size_percent` percent.
The sizes come from the trend answer (segmentation.answering), the words from the renderer
(segmentation.render.alerts), the chart is the trend chart, and the post goes through the
bot's Slack client (segmentation.slack_post).

Each run is alerted at most once per channel: `alert_deliveries` records the attempt before
posting ("sending") and its outcome ("sent" / "failed"). A failed post is tried again by the
next refresh; a sent one never again. An attempt cut off mid-post (status still "sending") is
not repeated either: a missed alert is better than a duplicate.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable, List, Optional

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from segmentation.build import utcnow
from segmentation.config import charts_dir
from segmentation.db import begin
from segmentation.errors import ConfigError
from segmentation.queries import SegmentQueries
from segmentation.query import Query
from segmentation.render.alerts import movement_alert
from segmentation.render.document import Chart, Reply
from segmentation.render.markup import plain
from segmentation.schema import alert_deliveries
from segmentation.slack_post import SlackPostError, SlackTarget, post_reply

log = logging.getLogger(__name__)

DEFAULT_SHARE_POINTS = 5.0
DEFAULT_SIZE_PERCENT = 10.0
LOG_CHANNEL = ""  # deliveries to the terminal / log


@dataclass(frozen=True)
class AlertSettings:
    """Thresholds and where alerts go (`slack` None: the terminal and the log)."""

    share_points: float = DEFAULT_SHARE_POINTS
    size_percent: float = DEFAULT_SIZE_PERCENT
    slack: Optional[SlackTarget] = None

    @classmethod
    def from_options(
        cls,
        share_points: Optional[float] = None,
        size_percent: Optional[float] = None,
        channel: Optional[str] = None,
    ) -> "AlertSettings":
        """Options, else SI_ALERT_SHARE_POINTS / SI_ALERT_SIZE_PERCENT / SI_ALERT_CHANNEL, else
        the defaults; Slack when SLACK_BOT_TOKEN and a channel are set."""

        def number(value, name, default) -> float:
            raw = value if value is not None else os.environ.get(name, "").strip() or default
            try:
                result = float(raw)
            except ValueError as exc:
                raise ConfigError(f"{name} must be a number, not {raw!r}") from exc
            if result <= 0:
                raise ConfigError(f"alert thresholds must be above 0 (got {result:g})")
            return result

        channel = channel or os.environ.get("SI_ALERT_CHANNEL", "").strip() or None
        return cls(
            number(share_points, "SI_ALERT_SHARE_POINTS", DEFAULT_SHARE_POINTS),
            number(size_percent, "SI_ALERT_SIZE_PERCENT", DEFAULT_SIZE_PERCENT),
            SlackTarget.from_env(channel),
        )

    @property
    def channel(self) -> str:
        return self.slack.channel if self.slack else LOG_CHANNEL


@dataclass(frozen=True)
class Movement:
    """One segment between two runs: users and shares before and after."""

    segment: str
    before: int
    after: int
    share_before: float
    share_after: float

    @property
    def share_points(self) -> float:
        return (self.share_after - self.share_before) * 100

    @property
    def size_percent(self) -> Optional[float]:
        return None if self.before == 0 else (self.after - self.before) / self.before * 100


@dataclass
class AlertCheck:
    """The current run against the previous one: what moved past the thresholds, the reply
    saying so and the trend chart (None / empty when nothing to compare or nothing moved)."""

    before: object = None
    after: object = None
    moves: Optional[List[Movement]] = None
    reply: Optional[Reply] = None
    chart: Optional[Chart] = None
    comparable: bool = True


def check_movement(queries: SegmentQueries, settings: AlertSettings) -> AlertCheck:
    """Which segments of the current run moved past the thresholds since the previous run."""
    trend = queries.answer(Query("trend"))
    if len(trend.runs) < 2:
        return AlertCheck()
    before, after = trend.runs[-2], trend.runs[-1]
    check = AlertCheck(before, after, [])
    if list(before.segment_names) != list(after.segment_names):
        check.comparable = False  # other k or names: sizes are not comparable
        return check
    total_before, total_after = trend.totals[before.id], trend.totals[after.id]
    for name in after.segment_names:
        a, b = trend.sizes[before.id].get(name, 0), trend.sizes[after.id].get(name, 0)
        move = Movement(
            name,
            a,
            b,
            a / total_before if total_before else 0.0,
            b / total_after if total_after else 0.0,
        )
        size = move.size_percent
        if abs(move.share_points) >= settings.share_points - 1e-9 or (
            (size is None and b > 0)
            or (size is not None and abs(size) >= settings.size_percent - 1e-9)
        ):
            check.moves.append(move)
    if check.moves:
        check.reply = movement_alert(
            before, after, check.moves, settings.share_points, settings.size_percent
        )
        from segmentation.charts import chart_for, chart_title  # matplotlib: only when needed

        path = chart_for(trend, charts_dir())
        check.chart = Chart(chart_title(trend), str(path))
    return check


def _claim(engine: Engine, run_id: int, kind: str, channel: str) -> Optional[int]:
    """Reserve the delivery of (run, kind, channel): its row id, or None when it was sent or
    an earlier attempt may have been (never post twice)."""
    d = alert_deliveries.c
    with begin(engine) as conn:
        row = conn.execute(
            select(d.id, d.status, d.attempts).where(
                d.run_id == run_id, d.kind == kind, d.channel == channel
            )
        ).first()
        if row is None:
            return int(
                conn.execute(
                    alert_deliveries.insert().values(
                        run_id=run_id, kind=kind, channel=channel, status="sending", attempts=1,
                        updated_at=utcnow(),
                    )  # fmt: skip
                ).inserted_primary_key[0]
            )
        if row.status == "failed":
            conn.execute(
                update(alert_deliveries)
                .where(d.id == row.id)
                .values(status="sending", attempts=row.attempts + 1, updated_at=utcnow())
            )
            return int(row.id)
        if row.status == "sending":
            log.warning(
                "an earlier %s for run #%s to %s was cut off mid-post; not posting it again",
                kind, run_id, channel or "the log",
            )  # fmt: skip
        return None


def _finish(engine: Engine, delivery_id: int, status: str, **values) -> None:
    with begin(engine) as conn:
        conn.execute(
            update(alert_deliveries)
            .where(alert_deliveries.c.id == delivery_id)
            .values(status=status, updated_at=utcnow(), **values)
        )


def deliver_alerts(
    engine: Engine,
    settings: AlertSettings,
    say: Callable[[str], None] = print,
) -> Optional[AlertCheck]:
    """Check the current run against the previous one and, when a segment moved past the
    thresholds and this run was not alerted to this channel yet, post the alert (Slack) or
    `say` it (terminal). A failed post is recorded and retried by the next call."""
    queries = SegmentQueries(engine=engine)
    check = check_movement(queries, settings)
    if not check.moves:
        return check
    delivery = _claim(engine, check.after.id, "alert", settings.channel)
    if delivery is None:
        return check
    detail = {"moves": [m.__dict__ for m in check.moves], "from_run": check.before.id}
    if settings.slack is None:
        text = plain(check.reply)
        say(text + (f"\nChart ({check.chart.title}): {check.chart.path}" if check.chart else ""))
        log.info("alert for run #%s: %s", check.after.id, text.splitlines()[0])
        _finish(engine, delivery, "sent", detail=detail)
        return check
    try:
        ts = post_reply(settings.slack, check.reply, check.chart)
    except SlackPostError as exc:
        log.error("alert for run #%s not posted (retried at the next refresh): %s",
                  check.after.id, exc)  # fmt: skip
        _finish(engine, delivery, "failed", error=str(exc)[:2000], detail=detail)
        raise
    _finish(engine, delivery, "sent", message_ts=ts, detail=detail)
    say(f"Alert posted to {settings.slack.channel} for run #{check.after.id}.")
    return check
