"""Reading a question: which words are which part (segment, feature, value, measure...).

`read(text, vocabulary, find_users)` labels the question's tokens and returns `Parts`: the
data's words (from `vocabulary`), the grammar's words (from `lexicon`), numbers, dates, run
references and user ids (checked against the run), and the words nothing accounted for.
`segmentation.language.interpret` turns the parts into a Query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from segmentation.attributes import ATTRIBUTES
from segmentation.language import lexicon
from segmentation.language.dates import DateRange, find_dates
from segmentation.language.shapes import shape_words
from segmentation.language.text import Token, stem, tokenize
from segmentation.language.vocabulary import (
    GUARDED_TIER_STEMS,
    Mention,
    Vocabulary,
    near_user_noun,
)

MAX_TOKENS = 80
MAX_LIST = 100
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15,
                "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "hundred": 100}  # fmt: skip
LIST_LEADS = {"top", "bottom", "first", "last", "show", "list", "give", "get", "next", "best",
              "worst", "see", "display"}  # fmt: skip
LIST_DETERMINERS = {"the", "these", "those", "our", "my"}
USER_NOUN_STEMS = {stem(n) for n in lexicon.USER_NOUNS}
ATTRIBUTE_NOUNS = frozenset(
    noun for a in ATTRIBUTES.values() for noun in a.nouns if " " not in noun
)
# A number right after these is a quantity or a bound ("over 40", "aged 25 to 34"), not a user.
BOUND_WORDS = {"over", "under", "above", "below", "than", "between", "to", "aged", "age", "ages",
               "least", "most", "within", "exactly", "about", "around"}  # fmt: skip
ID_LEADS = {"user", "customer", "member", "account", "id", "uid", "userid", "user_id", "client",
            "subscriber", "#"}  # fmt: skip


@dataclass
class Word:
    """A grammar phrase found in the question."""

    group: str  # "measure", "shape", "direction", "grouping", "which", "segment_noun"...
    value: str  # e.g. "mean", "compare", "most"
    start: int
    end: int
    said: str


@dataclass
class Parts:
    """Everything recognised in a question, by token position."""

    tokens: List[Token]
    mentions: List[Mention] = field(default_factory=list)
    words: List[Word] = field(default_factory=list)
    dates: List[Tuple[int, int, DateRange]] = field(default_factory=list)
    users: List[Tuple[int, str]] = field(default_factory=list)  # (token, id) found in the run
    missing_users: List[Tuple[int, str]] = field(default_factory=list)  # "user X", X unknown
    limit: Optional[int] = None
    limit_said: str = ""
    conditions: List[str] = field(default_factory=list)  # "more than average", "over 3 times"
    run: Optional[object] = None  # a run id, "previous" or "all"
    unknown: List[Token] = field(default_factory=list)
    truncated: bool = False

    def taken_by_dates(self) -> Set[int]:
        return {i for start, end, _ in self.dates for i in range(start, end)}

    def has(self, group: str, value: Optional[str] = None) -> bool:
        return any(w.group == group and (value is None or w.value == value) for w in self.words)

    def values(self, group: str) -> List[str]:
        return [w.value for w in self.words if w.group == group]

    def of_kind(self, kind: str) -> List[Mention]:
        return [m for m in self.mentions if m.of_kind(kind)]

    def word_at(self, index: int) -> Optional[Word]:
        return next((w for w in self.words if w.start <= index < w.end), None)

    def mention_at(self, index: int) -> Optional[Mention]:
        return next((m for m in self.mentions if m.start <= index < m.end), None)

    def before(self, index: int, groups: Sequence[str], reach: int = 2) -> Optional[Word]:
        """A grammar word of `groups` ending within `reach` tokens before `index`."""
        for word in self.words:
            if word.group in groups and index - reach <= word.end <= index:
                return word
        return None


def _phrases() -> List[Tuple[Tuple[str, ...], str, str]]:
    """(stems, group, value) for every grammar phrase, longest first."""
    table: List[Tuple[Tuple[str, ...], str, str]] = []

    def add(group: str, value: str, phrases) -> None:
        for text in phrases:
            table.append((tuple(stem(w) for w in text.lower().split()), group, value))

    for measure, phrases in lexicon.MEASURES.items():
        add("measure", measure, phrases)
    for shape, phrases in lexicon.SHAPES.items():
        add("shape", shape, phrases)
    for direction, phrases in lexicon.DIRECTIONS.items():
        add("direction", direction, phrases)
    for tier, phrases in lexicon.TIERS.items():
        add("tier", tier, phrases)
    for run, phrases in lexicon.RUNS.items():
        add("run", run, phrases)
    add("grouping", "by", lexicon.GROUPING)
    add("which", "which", lexicon.WHICH)
    add("segment_noun", "segment", lexicon.SEGMENT_NOUNS)
    add("user_noun", "user", lexicon.USER_NOUNS)
    add("run_noun", "run", lexicon.RUN_NOUNS)
    add("signup", "signup", lexicon.SIGNUP_WORDS)
    add("activity", "activity", lexicon.ACTIVITY_WORDS)
    add("negation", "not", lexicon.NEGATIONS)
    add("follow_up", "and", lexicon.FOLLOW_UPS)
    add("reference", "them", ("them", "those", "these", "they", "ones", "same", "that group"))
    add("why", "why", ("why", "reason", "explain", "how come"))
    return sorted(table, key=lambda item: -len(item[0]))


PHRASES = _phrases()
# Where one phrase can be read two ways, the first group listed wins.
GROUP_ORDER = ("run", "shape", "measure", "tier", "signup", "grouping", "which", "direction",
               "segment_noun", "user_noun", "run_noun", "activity", "negation", "reference",
               "why", "follow_up")  # fmt: skip


def _number(token: Token) -> Optional[int]:
    if token.text.isdigit() and len(token.text) <= 6:
        return int(token.text)
    return NUMBER_WORDS.get(token.lower)


def read(
    text: str,
    vocabulary: Vocabulary,
    find_users: Optional[Callable[[List[str]], List[str]]] = None,
) -> Parts:
    """Label the tokens of `text` (see the module docstring)."""
    tokens = tokenize(text)
    parts = Parts(tokens[:MAX_TOKENS], truncated=len(tokens) > MAX_TOKENS)
    tokens = parts.tokens
    taken: Set[int] = set()
    _run_refs(parts, taken)
    for start, end, found in find_dates(tokens, _reference_day(vocabulary)):
        if not taken & set(range(start, end)):
            parts.dates.append((start, end, found))
            taken |= set(range(start, end))
    _limits(parts, taken)
    _user_ids(parts, taken, find_users)
    parts.mentions = vocabulary.mentions(tokens, taken)
    for mention in parts.mentions:
        taken |= set(range(mention.start, mention.end))
    _grammar(parts, taken)
    parts.conditions = _conditions(tokens)
    known = shape_words()
    parts.unknown = [
        t
        for t in tokens
        if t.index not in taken
        and not t.is_stop
        and (t.stem not in known or any(c.isdigit() for c in t.text))
        and t.text not in "%#"
    ]
    return parts


def _reference_day(vocabulary: Vocabulary):
    run = vocabulary.run
    if run.data_as_of:
        return run.data_as_of.date()
    signup = run.params.get("signup_range")
    if signup:
        from datetime import date

        return date.fromisoformat(signup[1])
    return run.created_at.date()


def _run_refs(parts: Parts, taken: Set[int]) -> None:
    tokens = parts.tokens
    for i, token in enumerate(tokens):
        if token.lower not in ("run", "build", "segmentation"):
            continue
        j = i + 1
        if j < len(tokens) and tokens[j].lower in ("#", "number", "no", "id"):
            j += 1
        if j < len(tokens) and tokens[j].text.isdigit() and len(tokens[j].text) <= 9:
            parts.run = int(tokens[j].text)
            taken |= set(range(i, j + 1))
            return


def _limits(parts: Parts, taken: Set[int]) -> None:
    """ "top 10", "first five", "20 users": the size of a list."""
    tokens = parts.tokens
    for i, token in enumerate(tokens):
        number = _number(token)
        if number is None or i in taken or token.lower == "one":
            continue
        lead = i > 0 and tokens[i - 1].lower in LIST_LEADS
        # "20 users", "10 premium users"; after a determiner a longer reach: "the 10 least
        # active premium users"
        reach = 6 if i > 0 and tokens[i - 1].lower in LIST_DETERMINERS else 4
        follows = any(t.stem in USER_NOUN_STEMS for t in tokens[i + 1 : i + reach])
        if lead or (follows and not _year_like(token)):
            parts.limit = number
            parts.limit_said = " ".join(t.text for t in tokens[max(0, i - lead) : i + 1])
            taken.add(i)
            if lead:
                taken.add(i - 1)
                parts.words.append(
                    Word("direction", _lead_direction(tokens[i - 1].lower), i - 1, i, "")
                )
            return


COMPARATIVES = {"more", "less", "fewer", "greater", "higher", "lower", "bigger", "smaller"}
THRESHOLDS = {"average", "avg", "mean", "median", "usual", "normal", "typical"}


def _conditions(tokens: List[Token]) -> List[str]:
    """Conditions on a value ("more than average", "over 3 times", "below the median"):
    phrases no query can apply, found so that the answer says so instead of dropping them."""
    found = []
    for i, token in enumerate(tokens):
        if token.lower == "than" and i > 0 and tokens[i - 1].lower in COMPARATIVES:
            start = i - 1
        elif token.lower in ("over", "under", "above", "below"):
            start = i
        else:
            continue
        end = i + 1
        if end < len(tokens) and tokens[end].lower == "the":
            end += 1
        if end < len(tokens) and (tokens[end].lower in THRESHOLDS or _number(tokens[end])):
            end += 1
            if end < len(tokens) and tokens[end].lower in ("times", "x", "%", "percent"):
                end += 1
            found.append(" ".join(t.text for t in tokens[start:end]))
    return found


def _lead_direction(word: str) -> str:
    return "least" if word in ("bottom", "worst", "last") else "most"


def _year_like(token: Token) -> bool:
    return token.text.isdigit() and len(token.text) == 4 and 1970 <= int(token.text) <= 2100


def _user_ids(parts: Parts, taken: Set[int], find_users) -> None:
    """Tokens that are user ids of the run (checked in one query)."""
    tokens = parts.tokens
    candidates: Dict[str, int] = {}
    after_noun: Dict[str, int] = {}
    for i, token in enumerate(tokens):
        if i in taken:
            continue
        led = i > 0 and tokens[i - 1].lower in ID_LEADS
        shaped = any(c.isdigit() for c in token.text) or UUID.match(token.text)
        if i > 0 and tokens[i - 1].lower in ATTRIBUTE_NOUNS:
            continue  # "country 10", "plan 2": a value of that attribute, not a user
        if i > 0 and tokens[i - 1].lower in BOUND_WORDS:
            continue  # "over 40", "25 to 34": a bound, not a user
        if led or shaped:
            if token.lower in ID_LEADS or (token.is_stop and not shaped):
                continue
            candidates[token.text] = i
            if led:
                after_noun[token.text] = i
    if not candidates or find_users is None:
        return
    found = set(find_users(list(candidates)))
    for text, i in candidates.items():
        if text in found:
            parts.users.append((i, text))
            taken.add(i)
        elif text in after_noun:
            parts.missing_users.append((i, text))
            taken.add(i)


def _grammar(parts: Parts, taken: Set[int]) -> None:
    """Grammar phrases in the tokens no earlier step took, longest first."""
    tokens = parts.tokens
    stems = [t.stem for t in tokens]
    order = {group: rank for rank, group in enumerate(GROUP_ORDER)}
    found: List[Word] = []
    for i in range(len(tokens)):
        if i in taken:
            continue
        matches = [
            (key, group, value)
            for key, group, value in PHRASES
            if tuple(stems[i : i + len(key)]) == key and not taken & set(range(i, i + len(key)))
        ]
        if not matches:
            continue
        longest = max(len(m[0]) for m in matches)
        usable = [m for m in matches if len(m[0]) == longest]
        if len(usable) > 1 or usable[0][1] == "tier":
            guarded = [m for m in usable if m[1] == "tier" and m[0][0] in GUARDED_TIER_STEMS]
            if guarded and len(usable[0][0]) == 1 and not near_user_noun(tokens[i], tokens):
                usable = [m for m in usable if m not in guarded] or []
        if not usable:
            continue
        best = min(usable, key=lambda m: order[m[1]])
        key, group, value = best
        said = " ".join(t.text for t in tokens[i : i + len(key)])
        found.append(Word(group, value, i, i + len(key), said))
        taken |= set(range(i, i + len(key)))
    parts.words = sorted(parts.words + found, key=lambda w: w.start)
