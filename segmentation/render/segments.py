"""Replies about segments and users: overview, profile, comparison, advice, lists, one user."""

from __future__ import annotations

from typing import List, Optional, Sequence

from segmentation import formatting as fmt
from segmentation.query import Query
from segmentation.render import phrases as say
from segmentation.render.document import Reply
from segmentation.results import (
    Exported,
    FeatureComparison,
    Members,
    Overview,
    RunInfo,
    SegmentComparison,
    SegmentProfile,
    SegmentSummary,
    UserSegment,
)

KEY_FEATURES = 3


def comparison_rows(features: Sequence[FeatureComparison], limit: Optional[int] = None):
    """feature | value | reference | ratio rows, shared by profiles, comparisons and users."""
    return [
        [
            f.label,
            fmt.quantity(f.value, f.unit),
            fmt.quantity(f.reference, f.unit),
            fmt.ratio_phrase(f.value, f.reference),
        ]
        for f in features[:limit]
    ]


def headline(summary: SegmentSummary, overall: dict, run: RunInfo, count: int = 2) -> str:
    """The features where a segment differs most from the average, e.g. "clicks 31 (avg 12)"."""
    items = []
    for feature, mean in summary.means.items():
        reference = overall.get(feature, 0.0)
        if reference:
            items.append((abs(mean / reference - 1), feature, mean, reference))
    items.sort(reverse=True)
    return ", ".join(
        f"{run.feature_label(f)} {fmt.quantity(mean, run.feature_unit(f))} "
        f"(avg {fmt.quantity(ref, run.feature_unit(f))})"
        for _, f, mean, ref in items[:count]
    )


def _scope(query: Optional[Query]) -> str:
    where = say.filters_phrase(query.filters) if query is not None else ""
    return f" {where}" if where else ""


def overview(result: Overview) -> Reply:
    run, query = result.run, result.query
    reply = Reply().text(
        f"*{fmt.count(result.total_users)} users{_scope(query)} in "
        f"{len(result.segments)} segments:*"
    )
    for summary in reversed(result.segments):
        reply.text(
            f"• *{summary.name}*: {fmt.count(summary.size)} users ({fmt.percent(summary.share)})"
            + (" — " + headline(summary, result.overall_means, run) if summary.size else "")
        )
    return say.source(reply, run)


def profile(result: SegmentProfile) -> Reply:
    segment, query = result.segment, result.query
    scope = _scope(query)
    reply = Reply().text(
        f"*{segment.name}*{scope}: {fmt.count(segment.size)} users "
        f"({fmt.percent(segment.share)}{' of the users' + scope if scope else ''}). Averages "
        f"against {'all users' + scope if scope else 'the average user'}, biggest differences first:"
    )
    reply.table(["feature", segment.name, "all users", "ratio"], comparison_rows(result.features))
    return say.source(reply, result.run)


def comparison(result: SegmentComparison) -> Reply:
    a, b = result.first, result.second
    reply = Reply().text(
        f"*{a.name}* ({fmt.count(a.size)} users) vs *{b.name}* ({fmt.count(b.size)} users)"
        f"{_scope(result.query)}: averages per user, biggest differences first:"
    )
    reply.table(["feature", a.name, b.name, "ratio"], comparison_rows(result.features))
    return say.source(reply, result.run)


def members(page: Members) -> Reply:
    query, run = page.query, page.run
    feature = query.feature if query is not None else None
    first, last = page.offset + 1, page.offset + len(page.members)
    if feature:
        order = (
            f"highest {run.feature_label(feature)} first"
            if page.order == "most"
            else (f"lowest {run.feature_label(feature)} first")
        )
    else:
        order = "most engaged first" if page.order == "most" else "least engaged first"
    who = say.population(query) if query is not None else f"*{page.segment}* users"
    reply = Reply()
    if not page.members:
        reply.text(f"That's all {fmt.count(page.total)} {who}.")
        return say.source(reply, run)
    reply.text(f"{say.first_upper(who)}: {first}–{last} of {fmt.count(page.total)} ({order}).")
    shown = [feature] if feature else []
    shown += [f for f in run.features if f not in shown][: KEY_FEATURES - len(shown)]
    several = not (query and len(query.segments) == 1)
    headers = ["user"] + (["segment"] if several else []) + ["score"]
    headers += [run.feature_label(f) for f in shown]
    rows = []
    for m in page.members:
        row = [m.user_id] + ([m.segment] if several else []) + [f"{m.score:.2f}"]
        row += [fmt.quantity(m.features.get(f, 0.0), run.feature_unit(f)) for f in shown]
        rows.append(row)
    reply.table(headers, rows)
    if last < page.total:
        reply.text("Say *more* for the next page.")
    return say.source(reply, run)


def exported(result: Exported) -> Reply:
    """What a CSV export holds: how many users, which ones, which columns."""
    run, query = result.run, result.query
    who = say.population(query) if query is not None else "users"
    attributes = [a.replace("_", " ") for a in run.params.get("attributes", [])]
    columns = ["user id", "segment", "engagement score", f"the run's {len(run.features)} features"]
    reply = Reply().text(
        f"Exported all {fmt.count(result.rows)} {who} as CSV "
        f"({list_names(columns + attributes)}), most engaged first."
    )
    return say.source(reply, run)


def user(result: UserSegment, limit: int = 6) -> Reply:
    nearest = result.distances[0]
    runner_up = result.distances[1] if len(result.distances) > 1 else None
    why = (
        f"Why: their behaviour is closest to the *{nearest[0]}* centre (distance {nearest[1]:.2f})"
    )
    if runner_up:
        why += f"; the runner-up is {runner_up[0]} ({runner_up[1]:.2f})."
    reply = Reply().text(f"User *{result.user_id}* is in *{result.segment}*.").text(why)
    reply.table(
        ["feature", "user", f"{result.segment} avg", "ratio"],
        comparison_rows(result.features, limit),
    )
    if result.previous_run is None:
        if result.run.id > 1:
            reply.text("They were not in the previous run.")
    elif result.moved:
        reply.text(
            f"They *moved* from {result.previous_segment} (run #{result.previous_run.id}) "
            f"to {result.segment}."
            + (" What changed most, now against then:" if result.changes else "")
        )
        if result.changes:
            reply.table(["feature", "now", "then", "ratio"], comparison_rows(result.changes, 5))
    else:
        reply.text(f"Same segment as in the previous run (#{result.previous_run.id}).")
    return say.source(reply, result.run)


def list_names(names: List[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
