"""Targeting advice tied to a segment's own numbers.

The least engaged segment gets tactics for its weakest behaviours against the average user; the
most engaged gets retain-and-reward tactics built on its strengths; a middle segment gets
tactics for the gaps that separate it from the most engaged segment.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

from segmentation import formatting as fmt
from segmentation.render import phrases as say
from segmentation.render.document import Reply
from segmentation.results import FeatureComparison, SegmentComparison, SegmentProfile

# What to do about a weak behaviour, by event feature (feature tables get the generic line).
TACTICS = {
    "recency_days": "win-back: an email or push within a week, showing what is new since their last visit",
    "active_days": "habit building: a weekly digest and reminders on the days they usually come",
    "sessions": "habit building: reasons to come back, such as saved items and follow-ups",
    "searches": "discovery: recommendations and trending content up front, so they need not search",
    "article_views": "content: personalised article recommendations by email and push",
    "avg_article_time": "depth: better-matched, longer reads and 'continue reading' prompts",
    "total_article_time": "depth: series and related-article links at the end of each article",
    "clicks": "activation: onboarding tours and a clear next step on every page",
    "distinct_pages": "breadth: cross-links to sections they have not tried yet",
    "avg_click_time": "relevance: fewer, better-targeted pages in their feed",
}
GENERIC = "a campaign aimed at {label}"


def _badness(item: FeatureComparison) -> float:
    """How far the value is on the wrong side of the reference (positive = worse)."""
    if not item.reference:
        return 0.0
    ratio = item.value / item.reference
    return (ratio - 1.0) if item.lower_is_better else (1.0 - ratio)


def _evidence(item: FeatureComparison, reference_name: str) -> str:
    return (
        f"{item.label}: {fmt.quantity(item.value, item.unit)} vs "
        f"{fmt.quantity(item.reference, item.unit)} for {reference_name}"
    )


def _tactic_lines(items: Sequence[FeatureComparison], reference_name: str) -> List[str]:
    return [
        f"{index}. *{TACTICS.get(item.feature, GENERIC.format(label=item.label))}* — "
        f"{_evidence(item, reference_name)}."
        for index, item in enumerate(items, start=1)
    ]


def advice(profile: SegmentProfile, gap: Optional[SegmentComparison] = None) -> Reply:
    """Advice for the segment of `profile`: its rank in the run decides the kind of advice;
    `gap` compares a middle segment with the most engaged one."""
    segment = profile.segment
    k = len(profile.run.segment_names)
    rank = segment.rank
    size = f"{fmt.count(segment.size)} users ({fmt.percent(segment.share)})"
    scope = say.filters_phrase(profile.query.filters) if profile.query is not None else ""
    name = f"*{segment.name}*" + (f" {scope}" if scope else "")
    if rank == k - 1:
        strengths = sorted(profile.features, key=_badness)[:2]
        lines = [
            f"{name} — {size} — are your best users. Retain and reward them:",
            "1. *Referral and ambassador programme*: they already "
            + "; ".join(_evidence(item, "the average user") for item in strengths)
            + ".",
            "2. *Early access and feedback panels* for new features: they will use them first.",
            "3. *Premium or annual-plan offers*: engagement this high converts best.",
            "Watch for early warning signs: a drop in their strongest behaviours.",
        ]
    elif rank == 0 or gap is None:
        weakest = [
            i for i in sorted(profile.features, key=_badness, reverse=True) if _badness(i) > 0
        ][:3]
        lines = [f"{name} — {size}. Their weakest behaviours against the average user:"]
        lines += _tactic_lines(weakest, "the average user")
        lines.append("Start with the first: it is where they fall furthest behind.")
    else:
        gaps = [i for i in sorted(gap.features, key=_badness, reverse=True) if _badness(i) > 0][:3]
        lines = [f"{name} — {size}. To move them up, close the gaps to *{gap.second.name}*:"]
        lines += _tactic_lines(gaps, gap.second.name)
    reply = Reply()
    for line in lines:
        reply.text(line)
    return say.source(reply, profile.run)
