"""From the parts of a question to one Query, or to what could not be applied.

`understand(text, vocabulary, intent, previous, find_users)` is the whole job: read the
question (`parse.read`), decide the measure, segments, filters, grouping, direction and run,
merge a follow-up into the previous query, and list every part that can't be applied
(unknown words, values the data doesn't have, attributes it lacks, ambiguous names). The
caller answers only when nothing is left unapplied; otherwise it says what and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

from segmentation.attributes import ATTRIBUTES
from segmentation.language.parse import MAX_LIST, Parts, read
from segmentation.language.vocabulary import Vocabulary, phrase
from segmentation.query import RUN_MEASURES, STAT_MEASURES, Filter, Query

# What an NLU intent asks for when the words themselves don't say.
INTENT_MEASURES = {
    "ask_overview": "overview",
    "ask_segment_size": "count",
    "ask_segment_profile": "profile",
    "ask_metric": "mean",
    "compare_segments": "compare",
    "breakdown_segment": "count",
    "targeting_advice": "advice",
    "ask_chart": "overview",
    "lookup_user": "user",
    "list_members": "list",
    "ask_changes": "changes",
    "ask_trend": "trend",
    "ask_run_info": "run_info",
    "ask_quality": "quality",
    "ask_data_info": "data_info",
}
# Shapes that outrank an explicit measure word, then those that an explicit measure outranks.
STRONG_SHAPES = ("compare", "trend", "changes", "data_info", "quality", "run_info", "advice",
                 "profile")  # fmt: skip
WEAK_SHAPES = ("list", "overview")
EVERYONE = ("all", "every", "everyone", "everybody")


@dataclass
class Understanding:
    """A question read against the run's vocabulary."""

    query: Optional[Query]
    problems: List[str] = field(default_factory=list)  # parts that can't be applied
    unknown: List[str] = field(default_factory=list)  # words nothing accounted for
    ask: Optional[Tuple[str, List[Query], List[str]]] = None  # (question, queries, titles)
    notes: List[str] = field(default_factory=list)  # how a follow-up was merged, fuzzy reads
    read_nothing: bool = False  # no word of it is known: neither data, grammar nor shape
    follow_up: bool = False

    @property
    def answerable(self) -> bool:
        return self.query is not None and not self.problems and not self.unknown and not self.ask


def understand(
    text: str,
    vocabulary: Vocabulary,
    intent: Optional[str] = None,
    previous: Optional[Query] = None,
    find_users: Optional[Callable[[List[str]], List[str]]] = None,
) -> Understanding:
    """The Query a question asks (see the module docstring)."""
    parts = read(text, vocabulary, find_users)
    result = Understanding(None)
    words = [t for t in parts.tokens if not t.is_stop]
    result.read_nothing = bool(words) and len(parts.unknown) == len(words)
    run = vocabulary.run
    segments = _segments(parts, vocabulary, result)
    features = _features(parts, result)
    filters = _filters(parts, vocabulary, result)
    group_by = _grouping(parts, vocabulary, result)
    direction = _direction(parts)
    measure, group_by = _measured(
        parts, intent, direction, features, segments, filters, group_by, result
    )
    follow_up = previous is not None and _is_follow_up(parts, intent, measure)
    if measure is None and not follow_up and segments:
        measure = "count"  # a segment on its own: its size
    if measure is None and not follow_up and intent is None:
        result.unknown = [t.text for t in parts.unknown]
        return result  # nothing says what to answer: no query
    query = Query(
        measure=measure or "overview",
        features=tuple(features),
        segments=tuple(segments),
        filters=tuple(filters),
        group_by=tuple(group_by) if measure != "user" else (),
        rank=direction if group_by and measure != "user" else None,
        order=direction or ("least" if _lowest_only(segments, run) else "most"),
        limit=min(parts.limit or 10, MAX_LIST),
        top=parts.limit if group_by and direction and measure != "list" else None,
        run=parts.run or _run_word(parts),
        user_id=parts.users[0][1] if measure == "user" and parts.users else None,
        chart=parts.has("shape", "chart") or intent == "ask_chart",
        export=measure == "list" and parts.has("shape", "export"),
    )
    if parts.limit and parts.limit > MAX_LIST:
        result.notes.append(f"I can list at most {MAX_LIST} users at a time")
    if follow_up:
        query = _merge(previous, query, parts, measure, result)
        result.follow_up = True
    result.query = _whole_population(query)
    _check_needs(result, vocabulary)
    _check_direction(parts, result)
    for said in parts.conditions:
        result.problems.append(
            f'"{said}": I count and measure whole segments, filtered by the users\' '
            "attributes, not the users above or below a value"
        )
    for _, user in parts.missing_users:
        result.problems.append(f"user {user} is not in {run.label}")
    result.unknown = [t.text for t in parts.unknown]
    if parts.truncated:
        result.problems.append("the question is too long; ask it in fewer words")
    for mention in parts.mentions:
        if mention.fuzzy:
            result.notes.append(f'I read "{mention.said}" as {mention.entries[0].label}')
    return result


# --- parts -------------------------------------------------------------------------------------
def _segments(parts: Parts, vocabulary: Vocabulary, result: Understanding) -> List[str]:
    names = list(vocabulary.run.segment_names)
    found: List[str] = []
    negated = False
    for mention in parts.of_kind("segment"):
        options = [e.key for e in mention.of_kind("segment")]
        if len(options) > 1:
            _ask_segment(result, mention.said, options)
        elif options[0] not in found:
            found.append(options[0])
        negated = negated or bool(parts.before(mention.start, ("negation",)))
    covered = {i for m in parts.mentions for i in range(m.start, m.end)}
    for word in parts.words:
        if word.group != "tier" or word.start in covered:
            continue
        options = _tier(word.value, names)
        if len(options) > 1:
            _ask_segment(result, word.said, options)
        elif options and options[0] not in found:
            found.append(options[0])
            if word.said.lower() not in options[0].lower():
                result.notes.append(
                    f'"{word.said}" is the {_tier_phrase(word.value)} segment, {options[0]}'
                )
        negated = negated or bool(parts.before(word.start, ("negation",)))
    if negated and found:
        kept = [n for n in names if n not in found]
        result.notes.append(f"every segment except {', '.join(found)}")
        return kept
    return found


def _tier(tier: str, names: List[str]) -> List[str]:
    k = len(names)
    if tier == "low":
        return [names[0]]
    if tier == "high":
        return [names[-1]]
    return [names[k // 2]] if k % 2 else names[k // 2 - 1 : k // 2 + 1]


def _tier_phrase(tier: str) -> str:
    return {"low": "least engaged", "high": "most engaged"}.get(tier, "middle")


def _ask_segment(result: Understanding, said: str, options: List[str]) -> None:
    result.ask = (f'Which segment do you mean by "{said}"?', [], options)


def _features(parts: Parts, result: Understanding) -> List[str]:
    found: List[str] = []
    for mention in parts.of_kind("feature"):
        options = mention.of_kind("feature")
        if len(options) > 1:
            result.ask = (
                f'Which measure do you mean by "{mention.said}"?',
                [],
                [e.label for e in options],
            )
        elif options[0].key not in found:
            found.append(options[0].key)
            _absorb_neighbours(parts, mention, options[0], result)
    return found


def _absorb_neighbours(parts: Parts, mention, entry, result: Understanding) -> None:
    """A feature named by part of its name takes the unknown word right next to it
    ("resets passwords" -> New Password Request) and the unknown words of its own name
    ("posts the least per day" -> Posts Per Day), and the reply says how it was read."""
    label = phrase(entry.label)
    if len(phrase(mention.said)) >= len(label):
        return
    beside = [
        t for t in parts.unknown if t.index in (mention.start - 1, mention.end) or t.stem in label
    ]
    if not beside:
        return
    parts.unknown = [t for t in parts.unknown if t not in beside]
    first = min([mention.start] + [t.index for t in beside])
    last = max([mention.end - 1] + [t.index for t in beside])
    if last - first + 1 == len(beside) + mention.end - mention.start:  # one run of words
        said = " ".join(t.text for t in parts.tokens[first : last + 1])
    else:
        said = " ... ".join([mention.said] + [t.text for t in beside])
    result.notes.append(f'I read "{said}" as {entry.label}')


def _filters(parts: Parts, vocabulary: Vocabulary, result: Understanding) -> List[Filter]:
    run = vocabulary.run
    present = set(run.params.get("attributes", []))
    by_attribute = {}
    for mention in parts.of_kind("value"):
        if mention.of_kind("segment") or mention.of_kind("feature"):
            continue
        entry = mention.of_kind("value")[0]
        if entry.attribute not in present:
            result.problems.append(_no_attribute(run, entry.attribute, mention.said))
            continue
        if not entry.present:
            values = ", ".join(vocabulary.values_of(entry.attribute)[:20])
            result.problems.append(
                f"no user of {run.label} has {entry.attribute} {entry.label}; "
                f"the {ATTRIBUTES[entry.attribute].plural} in the data are {values}"
            )
            continue
        negated = bool(parts.before(mention.start, ("negation",)))
        values, said, was_negated = by_attribute.get(entry.attribute, ((), [], False))
        if entry.key not in values:
            by_attribute[entry.attribute] = (
                values + (entry.key,),
                said + [mention.said],
                was_negated or negated,
            )
    filters = [
        Filter(attribute, values, said=" or ".join(said), exclude=negated)
        for attribute, (values, said, negated) in by_attribute.items()
    ]
    for _, _, dates in parts.dates:
        if "signup_date" not in present:
            result.problems.append(_no_attribute(run, "signup_date", dates.said))
        elif parts.has("activity") and not parts.has("signup"):
            result.problems.append(
                f'"{dates.said}": I can\'t limit activity to a time window; the segments use '
                "every event up to the data's last day. I can filter by signup date "
                f'("who signed up {dates.describe()}")'
            )
        else:
            filters.append(Filter("signup_date", start=dates.start, end=dates.end, said=dates.said))
    return filters


def _no_attribute(run, attribute: str, said: str) -> str:
    from segmentation.answering import no_attribute_message

    return f'"{said}": ' + no_attribute_message(run, attribute)


def _grouping(parts: Parts, vocabulary: Vocabulary, result: Understanding) -> List[str]:
    groups: List[str] = []
    for word in parts.words:
        if word.group == "segment_noun" and parts.before(word.start, ("grouping", "which"), 3):
            groups.append("segment")
    present = set(vocabulary.run.params.get("attributes", []))
    for mention in parts.of_kind("attribute"):
        attribute = mention.of_kind("attribute")[0].key
        # "by country", "which country", "top 3 countries"
        grouped = parts.before(mention.start, ("grouping", "which"), 3) or (
            _plural(mention.said) and parts.before(mention.start, ("direction",), 2)
        )
        if attribute == "signup_date":
            if grouped and "signup_date" not in present:
                result.problems.append(_no_attribute(vocabulary.run, "signup_date", mention.said))
            elif grouped:
                monthly = any(t.lower in ("month", "months", "monthly") for t in parts.tokens)
                groups.append("signup_month" if monthly else "signup_year")
            continue
        neighbour = _unknown_next_to(parts, mention)
        if neighbour is not None:
            values = ", ".join(vocabulary.values_of(attribute)[:20])
            result.problems.append(
                f'no {ATTRIBUTES[attribute].label} matches "{neighbour.text}"'
                + (f"; the {ATTRIBUTES[attribute].plural} are {values}" if values else "")
            )
            parts.unknown = [t for t in parts.unknown if t.index != neighbour.index]
        elif grouped:
            if attribute not in present:
                result.problems.append(_no_attribute(vocabulary.run, attribute, mention.said))
            elif attribute not in groups:
                groups.append(attribute)
    for token in parts.tokens:  # "per month", "each year", "monthly": signups over time
        period = PERIODS.get(token.lower)
        if (
            period
            and token.index not in parts.taken_by_dates()
            and (
                token.lower in ("monthly", "yearly") or parts.before(token.index, ("grouping",), 1)
            )
        ):
            if "signup_date" not in present:
                result.problems.append(_no_attribute(vocabulary.run, "signup_date", token.text))
            elif period not in groups:
                groups.append(period)
            parts.unknown = [t for t in parts.unknown if t.index != token.index]
    return groups[:2]


def _plural(said: str) -> bool:
    return said.lower().endswith("s")


PERIODS = {"month": "signup_month", "months": "signup_month", "monthly": "signup_month",
           "year": "signup_year", "years": "signup_year", "yearly": "signup_year"}  # fmt: skip


def _unknown_next_to(parts: Parts, mention):
    for token in parts.unknown:
        if token.index in (mention.start - 1, mention.end):
            return token
    return None


def _direction(parts: Parts) -> Optional[str]:
    values = parts.values("direction")
    return values[0] if values else None


def _measured(parts, intent, direction, features, segments, filters, group_by, result):
    """What the question measures, and how its groups fall: the measure its words or intent
    ask for (`_measure`), then set right where the parts say more (a direction on one
    feature, values or segments side by side, a statistic in a table, counted features,
    several features)."""
    measure = _measure(parts, intent, features, group_by, segments, filters)
    if measure in STAT_MEASURES and not group_by and direction and not features:
        measure = "count"
    if measure in ("count", "share", *STAT_MEASURES) and direction and not group_by:
        if features and measure == "mean" and not parts.has("measure"):
            measure = "max" if direction == "most" else "min"
    contrasted = _contrasted(parts, segments, filters, group_by)
    if measure in ("compare", "profile"):
        measure, group_by = _tabled_by(parts, measure, group_by)
    if contrasted:  # "android vs ios": side by side, one group per value
        if measure in (None, "compare", "profile", "overview", "count"):
            measure = "mean" if features else "count"
        counted = measure in ("count", "share") and not segments
        group_by = [contrasted] + (["segment"] if counted else [])
    if measure in ("count", "share") and features:
        measure = _counted_feature(parts, measure, result)
    if len(features) > 1 and measure in (*STAT_MEASURES, "list"):
        measure = _several_features(parts, measure, segments, group_by, result)
    return measure, group_by


def _measure(parts, intent, features, group_by, segments, filters) -> Optional[str]:
    shapes = parts.values("shape")
    measures = parts.values("measure")
    if intent == "more":
        return "list"
    if parts.users:
        return "user"
    if "export" in shapes and not group_by:
        return "list"
    if "trend" in shapes or parts.run == "all" or "all" in parts.values("run"):
        return "trend"
    for shape in STRONG_SHAPES:
        if shape in shapes and _shape_fits(shape, parts, features, segments, filters, intent):
            return shape
    for measure in ("median", "min", "max", "mean", "sum"):
        if measure in measures and (features or measure != "sum"):
            return measure
    if "share" in measures:
        return "share"
    if "count" in measures or ("sum" in measures and not features):
        return "count"
    if ("list" in shapes or parts.limit) and not group_by:
        return "list"
    if "overview" in shapes and not features:
        return "overview" if not group_by else "count"
    default = INTENT_MEASURES.get(intent or "")
    if default == "mean" and not features:
        default = "count"  # "which country has the most power users": users are counted
    if features and default in (None, "overview", "count", "profile", "run_info", "changes"):
        return "mean"
    if default in ("overview", None) and (group_by or filters) and not features:
        return "count"
    if default == "user":  # a user question without a user id in it
        return "count" if (segments or filters) else None
    return default


def _contrasted(parts, segments, filters, group_by) -> Optional[str]:
    """The attribute whose values a comparison sets side by side ("android vs ios", "free
    versus premium users"), when it compares no two segments."""
    if not parts.has("shape", "compare") or len(segments) >= 2 or group_by:
        return None
    for f in filters:
        if len(f.values) >= 2 and not f.exclude:
            return f.attribute
    return None


def _several_features(parts: Parts, measure: str, segments, group_by, result) -> str:
    """A statistic or a ranking is of one feature. Averages of several for one segment are
    its profile on those features; otherwise every other feature is said, never dropped:
    a ratio ("clicks per session") or a second measure ("clicks and searches")."""
    if measure == "mean" and len(segments) == 1 and not group_by and not parts.has("grouping"):
        return "profile"
    for mention in parts.of_kind("feature")[1:]:
        per = parts.before(mention.start, ("grouping",), 1)
        if per is not None:
            result.problems.append(
                f'"{per.said} {mention.said}": I can\'t divide one measure by another; '
                "ask for each on its own"
            )
        else:
            result.problems.append(
                f'"{mention.said}": I give one measure at a time here; ask for it on its own'
            )
    return measure


def _tabled_by(parts, measure, group_by):
    """Profiles and comparisons are tables of averages. One that names another statistic
    ("median ratings of dormant vs regular", "describe power users by median", "how many
    casual vs regular users") is that statistic (per segment when compared); without a
    feature the answer asks which one."""
    said = parts.values("measure")
    stats = ("median", "min", "max", "sum") + (("share", "count") if measure == "compare" else ())
    for stat in stats:
        if stat in said:
            return stat, ["segment"] if measure == "compare" else group_by
    return measure, group_by


def _counted_feature(parts: Parts, measure: str, result: Understanding) -> str:
    """Users are counted, never events: "how many searches" right after the count word is
    searches per user (as "number of searches"); a feature elsewhere in a count or a share
    ("how many power users left a review", "what share of clicks") is a condition on its
    value or a share of its total, which the answer says it can't apply."""
    counted = [w for w in parts.words if w.group == "measure" and w.value == measure]
    for mention in parts.of_kind("feature"):
        if measure == "count" and any(mention.start - 1 <= w.end <= mention.start for w in counted):
            return "mean"
        what = "shares of users" if measure == "share" else "users"
        result.problems.append(
            f'"{mention.said}": I count {what} in segments and by their attributes, not by '
            "what they did; ask for the average, median or total of "
            + mention.of_kind("feature")[0].label
        )
    return measure


def _shape_fits(shape, parts, features, segments, filters, intent) -> bool:
    """Run-level shapes only when the question has no user-level parts."""
    if shape in ("quality", "run_info", "changes"):
        if shape == "changes" and intent == "ask_changes":
            return True
        return not (features or filters or parts.has("measure", "count"))
    if shape == "compare":
        return len(segments) >= 2 or intent == "compare_segments" or not features
    if shape == "data_info":
        return not (segments or filters)
    if shape == "profile" and not segments and intent == "ask_overview":
        return False  # "tell me about the segments": all of them, an overview
    return True


def _lowest_only(segments, run) -> bool:
    return list(segments) == [run.segment_names[0]]


def _run_word(parts: Parts):
    runs = parts.values("run")
    return runs[0] if runs else None


def _is_follow_up(parts: Parts, intent: Optional[str], measure: Optional[str]) -> bool:
    if intent in ("inform", "more"):
        return True
    if parts.tokens and parts.word_at(0) and parts.word_at(0).group in ("follow_up", "reference"):
        return True
    if parts.has("reference"):
        return True
    has_data = parts.mentions or parts.dates or parts.users
    if parts.has("shape", "export") and not has_data:  # "send me that as a file"
        return not any(t.text in EVERYONE for t in parts.tokens)
    return bool(has_data) and measure is None


def _merge(previous: Query, new: Query, parts: Parts, measure, result: Understanding) -> Query:
    """A follow-up changes what it names and keeps the rest of the previous question."""
    changes = {}
    if new.segments:
        changes["segments"] = new.segments
    if new.features:
        changes["features"] = new.features
    if new.group_by:
        changes["group_by"] = new.group_by
        if "segment" in new.group_by and not new.segments:  # "which segment has the most?"
            changes["segments"] = ()
    if parts.values("direction"):
        changes["rank"] = new.rank if new.group_by or previous.group_by else None
        changes["order"] = new.order
        if (new.group_by or previous.group_by) and not new.rank:
            changes["rank"] = parts.values("direction")[0]
    if new.run is not None:
        changes["run"] = new.run
    if parts.limit:
        changes["limit"] = new.limit
        changes["top"] = new.top
    if new.user_id:
        changes["user_id"] = new.user_id
    if measure and (parts.values("measure") or parts.values("shape") or parts.users):
        changes["measure"] = measure
    elif previous.measure in RUN_MEASURES + ("user",) and (new.segments or new.filters):
        changes["measure"] = "profile" if new.segments and not new.filters else "count"
    _ranked_follow_up(previous, new, parts, changes)
    filters = list(previous.filters)
    for f in new.filters:
        old = next((p for p in filters if p.attribute == f.attribute), None)
        if old is not None:
            filters[filters.index(old)] = f
            result.notes.append(f'"{_said(f)}" instead of "{_said(old)}"')
        else:
            filters.append(f)
            if previous.filters:
                kept = ", ".join(f'"{p.said}"' for p in previous.filters)
                result.notes.append(f'"{f.said}" added to {kept} from before')
    changes["filters"] = tuple(filters)
    grouped = changes.get("group_by", previous.group_by)
    picked = {f.attribute for f in new.filters}
    if picked & set(grouped) and not new.group_by:  # "by device" then "on iOS?": that group
        changes["group_by"] = tuple(g for g in grouped if g not in picked)
        if not changes["group_by"]:
            changes["rank"] = None
    export = new.export and changes.get("measure", previous.measure) == "list"
    if changes.get("measure") == "list":  # a list of users has no groups
        changes.update(group_by=(), rank=None)
    merged = previous.with_(chart=new.chart, export=export, offset=0, **changes)
    if merged.measure == "list" and parts.has("follow_up") and not changes:
        merged = merged.with_(offset=previous.offset + previous.limit)
    return merged


def _ranked_follow_up(previous: Query, new: Query, parts: Parts, changes: dict) -> None:
    """A follow-up's direction or statistic on a question that had no groups: "and the
    most?" after a segment's average asks which segment has the most; "and the median?"
    after a comparison is the median of each segment compared; "and the lowest?" after a
    maximum is the minimum."""
    measure = changes.get("measure", previous.measure)
    if new.group_by or previous.group_by:
        return
    if previous.measure == "compare" and measure in ("count", "share", *STAT_MEASURES):
        changes["group_by"] = ("segment",)
        return
    direction = parts.values("direction")
    if not direction:
        return
    if measure in ("min", "max"):
        changes["measure"] = "max" if direction[0] == "most" else "min"
    elif measure in ("count", "share", *STAT_MEASURES):
        changes.update(group_by=("segment",), segments=(), rank=direction[0])


def _said(f: Filter) -> str:
    return f"not {f.said}" if f.exclude else f.said


def _whole_population(query: Query) -> Query:
    """Questions about every segment at once: split by segment (counts of everyone are the
    overview)."""
    if query.segments or query.group_by or query.measure not in ("count", "share", *STAT_MEASURES):
        return query
    if query.measure in ("count", "share") and not query.filters:
        return query.with_(measure="overview")
    return query.with_(group_by=("segment",))


# Measures with no place for a direction: "most"/"least" in them ranks nothing.
UNRANKED = ("overview", "count", "share", "mean", "median", "sum", "profile", "compare")


def _check_direction(parts: Parts, result: Understanding) -> None:
    """A superlative the query has no place for ("and the most?" with nothing to rank) is
    said, never dropped; comparatives ("more", "less") belong to other phrases."""
    query = result.query
    if query is None or query.rank or query.measure not in UNRANKED:
        return
    for word in parts.words:
        if word.group == "direction" and word.said.lower() not in ("more", "less", "fewer"):
            result.problems.append(
                f'"{word.said}": I can\'t tell what to rank; ask "which segment has the '
                f'{word.said} ..." or for a list of users'
            )


def _check_needs(result: Understanding, vocabulary: Vocabulary) -> None:
    """Parts a measure can't do without: ask for them (with the run's own choices)."""
    query = result.query
    run = vocabulary.run
    if query is None or result.ask:
        return
    if query.measure in STAT_MEASURES and not query.features:
        options = [run.feature_label(f) for f in run.features]
        result.ask = ("Which measure?", [query.with_(features=(f,)) for f in run.features], options)
    elif query.measure in ("profile", "advice") and not query.segments:
        names = list(run.segment_names)
        result.ask = ("Which segment?", [query.with_(segments=(n,)) for n in names], names)
    elif query.measure == "compare" and len(query.segments) < 2:
        names = list(run.segment_names)
        if not query.segments:
            result.query = query.with_(segments=(names[0], names[-1]))
            result.notes.append("comparing the least and the most engaged segments")
        else:
            others = [n for n in names if n != query.segments[0]]
            result.ask = (
                f"Compare {query.segments[0]} with which segment?",
                [query.with_(segments=(query.segments[0], n)) for n in others],
                others,
            )
    elif query.measure == "user" and not query.user_id:
        result.ask = ('Which user? Send me their id, for example "user 4521".', [], [])
