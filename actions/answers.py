"""Query results -> replies for people (Slack-style mrkdwn: *bold*, _italic_, ``` tables)."""

from __future__ import annotations

from typing import List, Optional, Sequence

from actions.common import source_line
from segmentation import formatting as fmt
from segmentation.results import (
    Breakdown,
    FeatureComparison,
    Members,
    MetricBySegment,
    Migration,
    Overview,
    RunInfo,
    SegmentComparison,
    SegmentProfile,
    SegmentSize,
    SegmentSummary,
    UserSegment,
)


def code_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return "```\n" + fmt.table(headers, rows) + "\n```"


def _value(item: FeatureComparison, value: float) -> str:
    return fmt.quantity(value, item.unit)


def headline(summary: SegmentSummary, overall: dict, run: RunInfo, count: int = 2) -> str:
    """The features where a segment differs most from the average, e.g. "clicks 3.1x average"."""
    items = []
    for feature, mean in summary.means.items():
        reference = overall.get(feature, 0.0)
        if reference:
            items.append((abs(mean / reference - 1), feature, mean, reference))
    items.sort(reverse=True)
    parts = [
        f"{run.feature_label(f)} {fmt.quantity(mean, run.feature_unit(f))} "
        f"(avg {fmt.quantity(ref, run.feature_unit(f))})"
        for _, f, mean, ref in items[:count]
    ]
    return ", ".join(parts)


def overview_text(overview: Overview) -> str:
    run = overview.run
    lines = [f"*{fmt.count(overview.total_users)} users in {len(overview.segments)} segments:*"]
    for summary in reversed(overview.segments):
        lines.append(
            f"• *{summary.name}*: {fmt.count(summary.size)} users ({fmt.percent(summary.share)}) — "
            + headline(summary, overview.overall_means, run)
        )
    lines.append(source_line(run))
    return "\n".join(lines)


def size_text(size: SegmentSize) -> str:
    return (
        f"*{size.segment}* has *{fmt.count(size.size)} users*, "
        f"{fmt.percent(size.share)} of all {fmt.count(size.total_users)} users.\n"
        + source_line(size.run)
    )


def comparison_rows(features: Sequence[FeatureComparison], limit: Optional[int] = None):
    return [
        (
            f.label,
            _value(f, f.value),
            _value(f, f.reference),
            fmt.ratio_phrase(f.value, f.reference),
        )
        for f in features[:limit]
    ]


def profile_text(profile: SegmentProfile) -> str:
    segment = profile.segment
    return "\n".join(
        [
            f"*{segment.name}*: {fmt.count(segment.size)} users ({fmt.percent(segment.share)}). "
            "Averages against the average user, biggest differences first:",
            code_table(
                ("feature", segment.name, "all users", "ratio"), comparison_rows(profile.features)
            ),
            source_line(profile.run),
        ]
    )


def compare_text(comparison: SegmentComparison) -> str:
    a, b = comparison.first, comparison.second
    return "\n".join(
        [
            f"*{a.name}* ({fmt.count(a.size)} users) vs *{b.name}* ({fmt.count(b.size)} users), "
            "biggest differences first:",
            code_table(("feature", a.name, b.name, "ratio"), comparison_rows(comparison.features)),
            source_line(comparison.run),
        ]
    )


def metric_text(metric: MetricBySegment, segment: Optional[str]) -> str:
    unit = metric.unit
    rows = [
        (name, fmt.quantity(metric.means[name], unit), fmt.quantity(metric.medians[name], unit))
        for name in reversed(list(metric.means))
    ]
    rows.append(("all users", fmt.quantity(metric.overall_mean, unit), ""))
    if segment:
        intro = (
            f"*{segment}* users average *{fmt.quantity(metric.means[segment], unit)}* "
            f"{metric.label} (median {fmt.quantity(metric.medians[segment], unit)}), against "
            f"{fmt.quantity(metric.overall_mean, unit)} for all users."
        )
    else:
        leader = metric.leader()
        intro = (
            f"*{leader}* has the highest average {metric.label}: "
            f"*{fmt.quantity(metric.means[leader], unit)}* per user."
        )
    table = code_table(("segment", f"average {metric.label}", "median"), rows)
    return "\n".join([intro, table, source_line(metric.run)])


def user_text(user: UserSegment, limit: int = 6) -> str:
    nearest, runner_up = user.distances[0], user.distances[1] if len(user.distances) > 1 else None
    why = (
        f"Why: their behaviour is closest to the *{nearest[0]}* centre (distance {nearest[1]:.2f})"
    )
    if runner_up:
        why += f"; the runner-up is {runner_up[0]} ({runner_up[1]:.2f})."
    if user.previous_run is None:
        history = "They were not in the previous run." if user.run.id > 1 else ""
    elif user.moved:
        history = (
            f"They *moved* from {user.previous_segment} (run #{user.previous_run.id}) "
            f"to {user.segment}."
        )
    else:
        history = f"Same segment as in the previous run (#{user.previous_run.id})."
    rows = [
        (
            f.label,
            _value(f, f.value),
            _value(f, f.reference),
            fmt.ratio_phrase(f.value, f.reference),
        )
        for f in user.features[:limit]
    ]
    parts = [
        f"User *{user.user_id}* is in *{user.segment}*.",
        why,
        code_table(("feature", "user", f"{user.segment} avg", "ratio"), rows),
    ]
    if history:
        parts.append(history)
    parts.append(source_line(user.run))
    return "\n".join(parts)


def members_text(page: Members, key_features: Sequence[str], run: RunInfo) -> str:
    first, last = page.offset + 1, page.offset + len(page.members)
    order = "most engaged first" if page.order == "most" else "least engaged first"
    if not page.members:
        return f"That's all {fmt.count(page.total)} *{page.segment}* users.\n" + source_line(
            page.run
        )
    rows = [
        [m.user_id, f"{m.score:.2f}"]
        + [fmt.quantity(m.features.get(f, 0.0), run.feature_unit(f)) for f in key_features]
        for m in page.members
    ]
    headers = ["user", "score"] + [run.feature_label(f) for f in key_features]
    more = " Say *more* for the next page." if last < page.total else ""
    return "\n".join(
        [
            f"*{page.segment}*: users {first}–{last} of {fmt.count(page.total)} ({order}).",
            code_table(headers, rows),
            more.strip(),
            source_line(page.run),
        ]
    ).replace("\n\n", "\n")


def breakdown_text(result: Breakdown) -> str:
    if result.value is not None:
        count = result.value_count or 0
        share = count / result.segment_size if result.segment_size else 0.0
        return (
            f"Of the {fmt.count(result.segment_size)} *{result.segment}* users, "
            f"*{fmt.count(count)}* ({fmt.percent(share)}) have {result.dimension} "
            f"*{result.value}*.\n" + source_line(result.run)
        )
    rows = [
        (value, fmt.count(n), fmt.percent(n / result.segment_size)) for value, n in result.counts
    ]
    return "\n".join(
        [
            f"*{result.segment}* ({fmt.count(result.segment_size)} users) by {result.dimension}:",
            code_table((result.dimension, "users", "share"), rows),
            source_line(result.run),
        ]
    )


def changes_text(
    change: Migration, source: Optional[str] = None, target: Optional[str] = None
) -> str:
    before, after = change.from_run, change.to_run
    if source and target:
        moved = change.between(source, target)
        was = sum(n for (a, _), n in change.counts.items() if a == source)
        return (
            f"*{fmt.count(moved)}* of the {fmt.count(was)} users who were *{source}* in "
            f"run #{before.id} are *{target}* in run #{after.id}.\n"
            + f"_From {before.label} to {after.label}._"
        )
    names = list(after.segment_names)
    rows = [
        [name] + [fmt.count(change.between(name, other)) for other in names]
        for name in before.segment_names
    ]
    lines = [
        f"Since run #{before.id} ({before.created_at:%d %b %Y}), "
        f"*{fmt.count(change.moved())}* users changed segment:",
        code_table(["before → after"] + names, rows),
    ]
    new, gone = sum(change.new_users.values()), sum(change.gone_users.values())
    if new or gone:
        lines.append(f"New users: {fmt.count(new)}; users no longer present: {fmt.count(gone)}.")
    lines.append(f"_From {before.label} to {after.label}._")
    return "\n".join(lines)


def run_info_text(run: RunInfo) -> str:
    detail = run.params.get("source_detail", {})
    events = detail.get("events")
    if events:
        data = ", ".join(f"{fmt.count(n)} {table.replace('_', ' ')}" for table, n in events.items())
    else:
        data = f"the feature table {run.source.split(':', 1)[-1]} ({detail.get('file', '?')})"
    as_of = f", data up to {run.data_as_of:%d %b %Y %H:%M} UTC" if run.data_as_of else ""
    return (
        f"The segments were last updated on *{run.created_at:%d %b %Y at %H:%M} UTC* (run #{run.id}).\n"
        f"Data: {data}{as_of}.\n"
        f"Model: {run.algorithm}, k={run.k}, {fmt.count(run.n_users)} users, "
        f"features: {', '.join(run.feature_label(f) for f in run.features)}."
    )


def _silhouette_word(value: float) -> str:
    if value >= 0.5:
        return "strong separation"
    if value >= 0.25:
        return "reasonable separation"
    return "weak separation: the segments overlap a lot"


def quality_text(run: RunInfo) -> str:
    m = run.metrics
    lines = [f"Quality of {run.label} ({run.algorithm}, k={run.k}):"]
    if "silhouette" in m:
        sampled = (
            f", on a sample of {fmt.count(m['silhouette_sample'])}"
            if "silhouette_sample" in m
            else ""
        )
        lines.append(
            f"• Silhouette *{m['silhouette']:.2f}* (−1 to 1, higher is better{sampled}): "
            f"{_silhouette_word(m['silhouette'])}."
        )
    if "davies_bouldin" in m:
        lines.append(
            f"• Davies–Bouldin *{m['davies_bouldin']:.2f}* (lower is better; below 1 is good)."
        )
    if "calinski_harabasz" in m:
        lines.append(
            f"• Calinski–Harabasz *{fmt.count(m['calinski_harabasz'])}* (higher is better)."
        )
    if "stability_ari" in m:
        stable = "stable" if m["stability_ari"] >= 0.9 else "not fully stable across seeds"
        lines.append(
            f"• Stability *{m['stability_ari']:.2f}* (adjusted Rand index across reseeded fits, "
            f"1 = identical): {stable}."
        )
    return "\n".join(lines)


def list_names(names: List[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
