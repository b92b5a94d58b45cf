"""Saying a query back in words: who was counted, which filters, which run."""

from __future__ import annotations

from datetime import date
from typing import Any, List, Optional, Sequence

from segmentation import formatting as fmt
from segmentation.attributes import ATTRIBUTES, DATE_GROUPS
from segmentation.language.countries import readable
from segmentation.language.dates import DateRange
from segmentation.language.lexicon import USER_NOUNS
from segmentation.query import Filter, Query
from segmentation.render.document import Reply
from segmentation.results import RunInfo

WEAK_SILHOUETTE = 0.25
STAT_WORDS = {"mean": "average", "median": "median", "min": "lowest", "max": "highest",
              "sum": "total"}  # fmt: skip


def first_upper(text: str) -> str:
    """ "users in Germany" -> "Users in Germany" (the rest untouched, unlike str.capitalize)."""
    return text[:1].upper() + text[1:]


def value_label(attribute: str, value: Any) -> str:
    """How to say an attribute value: "Germany (DE)", "Mar 2026", "unknown"."""
    if value is None or value == "":
        return "unknown"
    if attribute == "country":
        return readable(str(value))
    if attribute == "signup_month" and isinstance(value, date):
        return f"{value:%b %Y}"
    return str(value)


def key_label(key: str) -> str:
    """ "country", "segment", "signup month"."""
    if key in ATTRIBUTES:
        return ATTRIBUTES[key].label
    return DATE_GROUPS.get(key, key)


def filter_phrase(f: Filter) -> str:
    """ "in Germany (DE)", "on iOS", "not on the premium plan", "who signed up in 2026"."""
    if f.attribute == "signup_date":
        return "who signed up " + DateRange(f.start, f.end, f.said).describe()
    names = " or ".join(value_label(f.attribute, v) for v in f.values)
    if f.attribute == "country":
        return ("outside " if f.exclude else "in ") + names
    if f.attribute == "plan":
        return ("not " if f.exclude else "") + f"on the {names} plan"
    preposition = ATTRIBUTES[f.attribute].preposition if f.attribute in ATTRIBUTES else "with"
    return ("not " if f.exclude else "") + f"{preposition or 'with'} {names}"


def filters_phrase(filters: Sequence[Filter]) -> str:
    order = list(ATTRIBUTES)
    ordered = sorted(filters, key=lambda f: order.index(f.attribute) if f.attribute in order else 9)
    return " ".join(filter_phrase(f) for f in ordered)


def segments_phrase(segments: Sequence[str]) -> str:
    """ "*Highly Engaged*", "*Casual* and *Dormant*"."""
    names = [f"*{s}*" for s in segments]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def population(query: Query, segments: Optional[Sequence[str]] = None) -> str:
    """ "*Highly Engaged* users in Germany (DE) on iOS" (markup)."""
    segments = query.segments if segments is None else segments
    who = f"{segments_phrase(segments)} users" if segments else "users"
    if segments and all(_names_people(s) for s in segments):  # "*Power Users*", not "... users"
        who = segments_phrase(segments)
    where = filters_phrase(query.filters)
    return f"{who} {where}".strip()


def _names_people(name: str) -> bool:
    words = name.lower().split()
    return bool(words) and words[-1] in USER_NOUNS


def stat_phrase(measure: str, label: str) -> str:
    """ "average clicks", "median Ratings"; a label that already says it stays as it is
    ("Average Screen Time", not "average Average Screen Time")."""
    word = STAT_WORDS[measure]
    return label if label.lower().startswith(word + " ") else f"{word} {label}"


def everyone(query: Query) -> str:
    """The reference population: every user matching the filters."""
    where = filters_phrase(query.filters)
    return f"users {where}" if where else "all users"


def feature_label(run: RunInfo, feature: str) -> str:
    return run.feature_label(feature)


def quantity(run: RunInfo, feature: str, value: Optional[float]) -> str:
    if value is None:
        return "n/a"
    return fmt.quantity(value, run.feature_unit(feature))


def source(reply: Reply, run: RunInfo) -> Reply:
    """The run the numbers come from, and a caveat when its segments barely separate."""
    caveat = weak_separation(run)
    if caveat:
        reply.text(caveat, "note")
    return reply.text(f"From {run.label}.", "source")


def weak_separation(run: RunInfo) -> Optional[str]:
    """A short caveat for runs whose segments overlap a lot, naming what does separate them."""
    silhouette = run.metrics.get("silhouette")
    if silhouette is None or silhouette >= WEAK_SILHOUETTE:
        return None
    separation = run.metrics.get("separation") or {}
    leading = sorted(separation.items(), key=lambda item: -item[1])
    named = [run.feature_label(f) for f, eta in leading[:3] if eta >= 0.1][:2]
    what = f"; they differ mainly in {' and '.join(named)}" if named else ""
    return (
        f"Note: these segments are weakly separated (silhouette {silhouette:.2f}){what}, so "
        "treat differences between them with care."
    )


def notes(reply: Reply, lines: List[str]) -> Reply:
    """How the question was read (fuzzy matches, follow-up merges), put before the run line."""
    if lines:
        note = Reply().text("(" + "; ".join(lines) + ".)", "note").blocks
        at = len(reply.blocks) - 1 if reply.blocks else 0
        reply.blocks[at:at] = note
    return reply
