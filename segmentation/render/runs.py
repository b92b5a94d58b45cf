"""Replies about runs and the data: what changed, sizes over time, when, how good, what data."""

from __future__ import annotations

from segmentation import formatting as fmt
from segmentation.attributes import ATTRIBUTES
from segmentation.render import phrases as say
from segmentation.render.document import Reply
from segmentation.results import DataInfo, Migration, RunInfo, Trend


def changes(change: Migration, source: str = "", target: str = "") -> Reply:
    """Flows between two runs (or users moving from one segment to another)."""
    before, after = change.from_run, change.to_run
    reply = Reply()
    if list(before.segment_names) != list(after.segment_names):
        reply.text(
            f"Run #{before.id} and run #{after.id} have different segments "
            f"({', '.join(before.segment_names)} vs {', '.join(after.segment_names)}), so they "
            "are not directly comparable: users were grouped differently, not moved."
        )
        return reply.text(f"From {before.label} to {after.label}.", "source")
    if source and target:
        moved = change.between(source, target)
        was = sum(n for (a, _), n in change.counts.items() if a == source)
        reply.text(
            f"*{fmt.count(moved)}* of the {fmt.count(was)} users who were *{source}* in "
            f"run #{before.id} are *{target}* in run #{after.id}."
        )
        return reply.text(f"From {before.label} to {after.label}.", "source")
    names = list(after.segment_names)
    reply.text(
        f"Since run #{before.id} ({before.created_at:%d %b %Y}), "
        f"*{fmt.count(change.moved())}* users changed segment:"
    )
    reply.table(
        ["before → after"] + names,
        [[a] + [fmt.count(change.between(a, b)) for b in names] for a in before.segment_names],
    )
    flows = []
    for name in names:
        came = sum(n for (a, b), n in change.counts.items() if b == name and a != name)
        left = sum(n for (a, b), n in change.counts.items() if a == name and b != name)
        flows.append(f"{name}: +{fmt.count(came)} in, −{fmt.count(left)} out")
    reply.text("; ".join(flows) + ".")
    new, gone = sum(change.new_users.values()), sum(change.gone_users.values())
    if new or gone:
        reply.text(f"New users: {fmt.count(new)}; users no longer present: {fmt.count(gone)}.")
    return reply.text(f"From {before.label} to {after.label}.", "source")


def trend(result: Trend) -> Reply:
    """Sizes and shares of each segment in each run, oldest first."""
    query = result.query
    names = []
    for run in result.runs:
        names += [n for n in run.segment_names if n not in names]
    who = say.everyone(query)
    reply = Reply().text(
        f"{say.first_upper(who)} per segment in the last {len(result.runs)} run(s):"
    )
    rows = []
    for run in result.runs:
        total = result.totals[run.id]
        cells = [
            f"{fmt.count(result.sizes[run.id][n])} ({fmt.percent(result.sizes[run.id][n] / total)})"
            if n in result.sizes[run.id] and total
            else "—"
            for n in names
        ]
        rows.append([f"#{run.id} {run.created_at:%d %b %Y}"] + cells + [fmt.count(total)])
    reply.table(["run"] + names + ["users"], rows)
    if len(result.runs) >= 2:
        first, last = result.runs[0], result.runs[-1]
        moves = []
        for name in names:
            a, b = result.sizes[first.id].get(name), result.sizes[last.id].get(name)
            if a is not None and b is not None:
                sign = "+" if b >= a else "−"
                moves.append(f"{name} {sign}{fmt.count(abs(b - a))}")
        if moves:
            reply.text(f"From run #{first.id} to run #{last.id}: " + ", ".join(moves) + ".")
    if result.skipped:
        ids = ", ".join(f"#{run.id}" for run in result.skipped)
        reply.text(f"Left out: run(s) {ids}, which can't filter {say.everyone(query)}: their "
                   "users have no such attribute.", "note")  # fmt: skip
    return reply.text(f"From runs #{result.runs[0].id} to #{result.runs[-1].id}.", "source")


def run_info(run: RunInfo) -> Reply:
    detail = run.params.get("source_detail", {})
    events = detail.get("events")
    if events:
        data = ", ".join(f"{fmt.count(n)} {table.replace('_', ' ')}" for table, n in events.items())
    else:
        data = f"the feature table {run.source.split(':', 1)[-1]} ({detail.get('file', '?')})"
    as_of = f", data up to {run.data_as_of:%d %b %Y %H:%M} UTC" if run.data_as_of else ""
    if run.params.get("window_days"):
        as_of += f", counting only the last {run.params['window_days']:g} days of events"
    reply = Reply().text(
        f"The segments were last updated on *{run.created_at:%d %b %Y at %H:%M} UTC* "
        f"(run #{run.id})."
    )
    reply.text(f"Data: {data}{as_of}.")
    reply.text(
        f"Model: {run.algorithm}, k={run.k}, {fmt.count(run.n_users)} users, "
        f"segments {', '.join(run.segment_names)}, based on: "
        f"{', '.join(run.feature_label(f) for f in run.features)}."
    )
    return say.source(reply, run)


def _silhouette_word(value: float) -> str:
    if value >= 0.5:
        return "strong separation"
    if value >= say.WEAK_SILHOUETTE:
        return "reasonable separation"
    return "weak separation: the segments overlap a lot"


def quality(run: RunInfo) -> Reply:
    m = run.metrics
    reply = Reply().text(f"Quality of {run.label} ({run.algorithm}, k={run.k}):")
    if "silhouette" in m:
        sampled = (
            f", on a sample of {fmt.count(m['silhouette_sample'])}"
            if "silhouette_sample" in m
            else ""
        )
        reply.text(
            f"• Silhouette *{m['silhouette']:.2f}* (−1 to 1, higher is better{sampled}): "
            f"{_silhouette_word(m['silhouette'])}."
        )
    if "davies_bouldin" in m:
        reply.text(
            f"• Davies–Bouldin *{m['davies_bouldin']:.2f}* (lower is better; below 1 is good)."
        )
    if "calinski_harabasz" in m:
        reply.text(f"• Calinski–Harabasz *{fmt.count(m['calinski_harabasz'])}* (higher is better).")
    if "stability_ari" in m:
        stable = "stable" if m["stability_ari"] >= 0.9 else "not fully stable across seeds"
        reply.text(
            f"• Stability *{m['stability_ari']:.2f}* (adjusted Rand index across reseeded fits, "
            f"1 = identical): {stable}."
        )
    separation = m.get("separation") or {}
    if separation:
        leading = sorted(separation.items(), key=lambda item: -item[1])[:3]
        reply.text(
            "• What separates the segments most: "
            + ", ".join(f"{run.feature_label(f)} ({eta:.0%} of its variance)" for f, eta in leading)
            + "."
        )
    return say.source(reply, run)


def data_info(info: DataInfo) -> Reply:
    """The run's features, and the attributes and values of its users."""
    run = info.run
    reply = Reply()
    if info.asked and info.asked in ATTRIBUTES and info.asked not in info.attributes:
        reply.text(f"This data has no {ATTRIBUTES[info.asked].label}.")
    wanted = [info.asked] if info.asked in info.attributes else list(info.attributes)
    if not info.asked or info.asked not in info.attributes:
        reply.text(
            f"{say.first_upper(run.label)} segments {fmt.count(run.n_users)} users "
            f"into {', '.join(run.segment_names)}, from "
            f"{'events' if run.source == 'events' else 'the feature table ' + run.source.split(':', 1)[-1]}"
            f", on these features: {', '.join(label for _, label in info.features)}."
        )
    for attribute in wanted:
        values = info.attributes[attribute]
        label = ATTRIBUTES[attribute].plural
        shown = values[:15]
        rows = [[say.value_label(attribute, v), fmt.count(n)] for v, n in shown]
        reply.text(f"{say.first_upper(label)} ({len(values)}):")
        reply.table([ATTRIBUTES[attribute].label, "users"], rows)
        if len(values) > len(shown):
            reply.text(f"… and {len(values) - len(shown)} more.")
    if not info.attributes:
        reply.text(
            "No users table was loaded for this run, so there is no country, device, plan or "
            "signup date to filter by."
        )
    elif "signup_date" in run.params.get("attributes", []):
        first, last = run.params.get("signup_range", ["?", "?"])
        reply.text(f"Signup dates run from {first} to {last}.")
    return say.source(reply, run)
