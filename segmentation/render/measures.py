"""Counts, shares and statistics in words: every reply says what it counted, then the number."""

from __future__ import annotations

from typing import List

from segmentation import formatting as fmt
from segmentation.query import STAT_MEASURES
from segmentation.render import phrases as say
from segmentation.render.document import Reply
from segmentation.results import Group, Measured


def measured(result: Measured) -> Reply:
    """The reply for a count, share or statistic, grouped or not, ranked or not."""
    reply = Reply()
    if result.query.measure in STAT_MEASURES:
        _statistic(reply, result)
    else:
        _count(reply, result)
    return say.source(reply, result.run)


def _pct(part: int, whole: int) -> str:
    return fmt.percent(part / whole) if whole else "n/a"


def _labels(result: Measured, group: Group) -> List[str]:
    return [
        str(value) if key == "segment" else say.value_label(key, value)
        for key, value in zip(result.query.group_by, group.key)
    ]


def _top(reply: Reply, result: Measured, groups: List[Group]) -> List[Group]:
    """The first N ranked groups when the question asked for N ("top 3 countries")."""
    top = result.query.top
    if not top or not result.query.rank or top >= len(groups):
        return groups
    end = "top" if result.query.rank == "most" else "bottom"
    reply.text(f"The {end} {top} of {len(groups)}:")
    return groups[:top]


def _tied(ranked: List[Group], value) -> List[Group]:
    return [g for g in ranked if value(g) == value(ranked[0])]


# --- counts and shares ---------------------------------------------------------------------
def _count(reply: Reply, result: Measured) -> None:
    query = result.query
    if not query.group_by:
        _single_count(reply, result)
    elif query.group_by == ("segment",):
        _count_by_segment(reply, result)
    else:
        _count_by_attribute(reply, result)


def _single_count(reply: Reply, result: Measured) -> None:
    query, n = result.query, result.total.n
    size = sum(result.segment_sizes.values())
    everyone = result.population.n
    if query.segments and not query.filters:
        reply.text(
            f"{say.segments_phrase(query.segments)} has *{fmt.count(n)} users*, "
            f"{_pct(n, result.run.n_users)} of all {fmt.count(result.run.n_users)} users."
        )
        return
    if query.segments:
        who = say.population(query)
        share_of_segment = _pct(n, size)
        share_of_filtered = _pct(n, everyone)
        if query.measure == "share":
            reply.text(
                f"*{share_of_segment}* of {say.segments_phrase(query.segments)} users are "
                f"{say.filters_phrase(query.filters)}: {fmt.count(n)} of {fmt.count(size)}. "
                f"They are {share_of_filtered} of the {fmt.count(everyone)} "
                f"{say.everyone(query)}."
            )
        else:
            reply.text(
                f"{say.first_upper(who)}: *{fmt.count(n)}* — {share_of_segment} of all "
                f"{fmt.count(size)} {say.segments_phrase(query.segments)} users, and "
                f"{share_of_filtered} of the {fmt.count(everyone)} {say.everyone(query)}."
            )
        return
    total = result.run.n_users
    reply.text(
        f"{say.first_upper(say.everyone(query))}: *{fmt.count(n)}* of all {fmt.count(total)} users "
        f"({_pct(n, total)})."
    )


def _count_by_segment(reply: Reply, result: Measured) -> None:
    query = result.query
    everyone = result.population.n
    where = say.filters_phrase(query.filters)
    if query.rank:
        ranked = result.ranked()
        leaders = _tied(ranked, lambda g: g.n)
        word = "the most" if query.rank == "most" else "the fewest"
        names = say.segments_phrase([g.key[0] for g in leaders])
        verb = "have" if len(leaders) > 1 else "has"
        reply.text(
            f"{names} {verb} {word} users {where}".rstrip()
            + f": *{fmt.count(leaders[0].n)}* ({_pct(leaders[0].n, everyone)} of the "
            f"{fmt.count(everyone)} {say.everyone(query)})."
        )
    else:
        reply.text(
            f"{say.first_upper(say.everyone(query))}: *{fmt.count(everyone)}*"
            + (f" of all {fmt.count(result.run.n_users)} users" if query.filters else "")
            + ", by segment:"
        )
    rows = [[g.key[0], fmt.count(g.n), _pct(g.n, everyone)] for g in result.groups]
    reply.table(["segment", "users", "share"], rows)


def _count_by_attribute(reply: Reply, result: Measured) -> None:
    query = result.query
    key = [k for k in query.group_by if k != "segment"][0]
    who = say.population(query)
    asked = result.total.n
    ranking_share = query.measure == "share" and bool(query.segments)
    if query.rank:
        ranked = result.ranked()
        value = (lambda g: g.share_of_base or 0.0) if ranking_share else (lambda g: g.n)
        leaders = _tied(ranked, value)
        first = leaders[0]
        names = " and ".join(f"*{' / '.join(_labels(result, g))}*" for g in leaders)
        verb = "have" if len(leaders) > 1 else "has"
        if ranking_share:
            word = "the highest" if query.rank == "most" else "the lowest"
            reply.text(
                f"{names} {verb} {word} share of {who}: *{_pct(first.n, first.base)}* "
                f"({fmt.count(first.n)} of its {fmt.count(first.base)} users)."
            )
        else:
            word = "the most" if query.rank == "most" else "the fewest"
            reply.text(
                f"{names} {verb} {word} {who}: *{fmt.count(first.n)}* "
                f"({_pct(first.n, asked)} of the {fmt.count(asked)} {who})."
            )
        groups = _top(reply, result, ranked)
    else:
        reply.text(f"{say.first_upper(who)} by {say.key_label(key)}: *{fmt.count(asked)}* in all.")
        dated = key in ("signup_month", "signup_year")
        groups = sorted(result.groups, key=lambda g: (g.key[0] is None, g.key) if dated else -g.n)
    headers = [say.key_label(k) for k in query.group_by] + ["users", "share"]
    if query.segments:
        headers.append(f"of each {say.key_label(key)}'s users")
    rows = []
    for g in groups:
        row = _labels(result, g) + [fmt.count(g.n), _pct(g.n, asked)]
        if query.segments:
            row.append(_pct(g.n, g.base))
        rows.append(row)
    reply.table(headers, rows)


# --- statistics -----------------------------------------------------------------------------
def _statistic(reply: Reply, result: Measured) -> None:
    query, run = result.query, result.run
    feature = query.feature
    what = say.stat_phrase(query.measure, say.feature_label(run, feature))
    if not query.group_by:
        total = result.total
        reply.text(
            f"{say.first_upper(what)} of {say.population(query)}: "
            f"*{say.quantity(run, feature, total.value)}* ({fmt.count(total.n)} users), against "
            f"{say.quantity(run, feature, result.population.value)} for {say.everyone(query)}."
        )
        return
    if query.rank:
        ranked = [g for g in result.ranked() if g.value is not None]
        if ranked:
            leaders = _tied(ranked, lambda g: g.value)
            names = " and ".join(f"*{' / '.join(_labels(result, g))}*" for g in leaders)
            high = "the highest" if query.rank == "most" else "the lowest"
            verb = "have" if len(leaders) > 1 else "has"
            scope = say.filters_phrase(query.filters)
            among = f" among {say.population(query)}" if query.group_by[0] != "segment" else ""
            reply.text(
                f"{names} {verb} {high} {what}{among}"
                + (f" ({scope})" if scope and not among else "")
                + f": *{say.quantity(run, feature, leaders[0].value)}*"
                + (" per user." if query.measure == "mean" else ".")
            )
    else:
        keys = " and ".join(say.key_label(k) for k in query.group_by)
        reply.text(f"{say.first_upper(what)} of {say.population(query)}, by {keys}:")
    groups = _top(reply, result, result.ranked()) if query.rank else result.groups
    headers = [say.key_label(k) for k in query.group_by] + [what, "users"]
    rows = [
        _labels(result, g) + [say.quantity(run, feature, g.value), fmt.count(g.n)] for g in groups
    ]
    rows.append(
        [say.everyone(query)]
        + [""] * (len(query.group_by) - 1)
        + [say.quantity(run, feature, result.population.value), fmt.count(result.population.n)]
    )
    reply.table(headers, rows)
