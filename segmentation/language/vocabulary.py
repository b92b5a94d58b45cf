"""The data's own words, read from a run: segment names, features, attribute values.

`Vocabulary.for_run(run)` is the one place that resolves what a question names. Every phrase
is matched on word stems; near-misses ("higly", "casul", "Brazl") are matched with rapidfuzz.
Features answer to their column name, their label, declared aliases and every part of
their name no other feature shares ("password" -> "New Password Request"). Countries answer
to names, codes and adjectives. Short codes ("DE", "1") only count when written in capitals
or next to their attribute's name ("country 1"), so "in" and "us" stay words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Set, Tuple

from rapidfuzz import fuzz, process

from segmentation.attributes import ATTRIBUTES
from segmentation.language import lexicon
from segmentation.language.countries import countries, country_of, readable
from segmentation.language.text import STOP_WORDS, Token, stem, tokenize
from segmentation.results import RunInfo

KIND_ORDER = ("segment", "feature", "value", "attribute")
FUZZY_MIN_LENGTH = 4
FUZZY_CUTOFF = 80.0
SHORT_FUZZY_CUTOFF = 85.0


@dataclass(frozen=True)
class Entry:
    """Something a question can name."""

    kind: str  # "segment", "feature", "value" or "attribute"
    key: str  # segment name, feature name, attribute value, attribute name
    attribute: str = ""  # a value's attribute
    label: str = ""  # how to say it back
    present: bool = True  # a country the data does not have is known, but absent


@dataclass(frozen=True)
class Mention:
    """Tokens [start, end) naming one (or, when ambiguous, several) entries."""

    start: int
    end: int
    entries: Tuple[Entry, ...]
    said: str
    fuzzy: bool = False

    def of_kind(self, kind: str) -> Tuple[Entry, ...]:
        return tuple(e for e in self.entries if e.kind == kind)


def phrase(text: str) -> Tuple[str, ...]:
    """The content-word stems of a name ("Average Spent on App (INR)" -> spent, app, inr...)."""
    words = re.split(r"[^0-9a-z]+", text.lower().replace("_", " "))
    return tuple(stem(w) for w in words if w and w not in STOP_WORDS)


def _grammar_stems() -> Set[str]:
    words: List[str] = []
    for group in (lexicon.MEASURES, lexicon.SHAPES, lexicon.DIRECTIONS, lexicon.RUNS):
        for phrases in group.values():
            words += [w for p in phrases for w in p.split()]
    for phrases in (lexicon.GROUPING, lexicon.SEGMENT_NOUNS, lexicon.USER_NOUNS):
        words += [w for p in phrases for w in p.split()]
    return {stem(w) for w in words} | {"new", "last", "number"}


GRAMMAR_STEMS = _grammar_stems()
GUARDED_TIER_STEMS = {stem(w) for w in lexicon.AMBIGUOUS_TIERS}
USER_NOUN_STEMS = {stem(w) for w in lexicon.USER_NOUNS + lexicon.SEGMENT_NOUNS} | {"engag"}


class Vocabulary:
    """Phrases of the run's segments and features and of its users' attribute values."""

    def __init__(self, run: RunInfo) -> None:
        self.run = run
        self.phrases: Dict[Tuple[str, ...], Set[Entry]] = {}
        self.strict: Set[Tuple[Tuple[str, ...], Entry]] = set()  # codes: capitals or by name
        self.guarded: Set[Tuple[str, ...]] = set()  # "high", "low": next to a user noun
        self._add_segments(run.segment_names)
        self._add_features(run)
        self._add_attributes(run)
        self.stems = sorted({s for key in self.phrases for s in key})
        self.stem_set = set(self.stems)
        self.longest = max((len(k) for k in self.phrases), default=1)

    @classmethod
    def for_run(cls, run: RunInfo) -> "Vocabulary":
        """The vocabulary of `run` (cached per run: a run never changes once complete)."""
        cached = _cache.get(run.id)
        if cached is None or cached.run != run:
            cached = _cache[run.id] = cls(run)
            while len(_cache) > 32:
                _cache.pop(next(iter(_cache)))
        return cached

    # --- building ----------------------------------------------------------------------------
    def _add(self, key: Tuple[str, ...], entry: Entry) -> None:
        if key:
            self.phrases.setdefault(key, set()).add(entry)

    def _add_distinctive(self, entries: Sequence[Tuple[Entry, Iterable[Tuple[str, ...]]]]):
        """Each entry's full phrases, and every part of them that no other entry shares."""
        parts: Dict[Tuple[str, ...], Set[Entry]] = {}
        for entry, keys in entries:
            for key in keys:
                self._add(key, entry)
                for length in range(1, len(key)):
                    for start in range(len(key) - length + 1):
                        part = key[start : start + length]
                        if not set(part) <= GRAMMAR_STEMS:
                            parts.setdefault(part, set()).add(entry)
        for part, owners in parts.items():
            if len(owners) == 1 and part not in self.phrases:
                self._add(part, next(iter(owners)))
                if len(part) == 1 and part[0] in GUARDED_TIER_STEMS:
                    self.guarded.add(part)

    def _add_segments(self, names: Sequence[str]) -> None:
        self._add_distinctive(
            [(Entry("segment", name, label=name), [phrase(name)]) for name in names]
        )

    def _add_features(self, run: RunInfo) -> None:
        aliases = run.params.get("aliases", {})
        items = []
        for feature in run.features:
            entry = Entry("feature", feature, label=run.feature_label(feature))
            keys = {phrase(feature), phrase(run.feature_label(feature))}
            keys |= {phrase(alias) for alias in aliases.get(feature, ())}
            items.append((entry, [k for k in keys if k]))
        self._add_distinctive(items)

    def _add_attributes(self, run: RunInfo) -> None:
        for attribute in ATTRIBUTES.values():
            entry = Entry("attribute", attribute.name, label=attribute.label)
            for noun in attribute.nouns:
                self._add(phrase(noun), entry)
        values = run.params.get("values", {})
        known_countries = set()
        for attribute, items in values.items():
            for value in items:
                label = readable(value) if attribute == "country" else value
                entry = Entry("value", value, attribute, label)
                self._add_value_phrase(value, entry)
                country = country_of(value) if attribute == "country" else None
                if country:
                    known_countries.add(country.code)
                    for name in country.names + country.adjectives:
                        self._add(phrase(name), entry)
                    for code in country.codes:
                        self._add_value_phrase(code, entry, code=True)
        for code, country in countries().items():  # known countries the data doesn't have
            if code not in known_countries:
                entry = Entry("value", code, "country", f"{country.name} ({code})", False)
                for name in country.names + country.adjectives:
                    self._add(phrase(name), entry)
                for alias in country.codes:
                    self._add_value_phrase(alias, entry, code=True)

    def _add_value_phrase(self, value: str, entry: Entry, code: bool = False) -> None:
        """A value's own words; codes, short and numeric values only count in capitals or
        next to their attribute's name."""
        key = phrase(value) or (stem(value.lower()),)
        self._add(key, entry)
        short = len(value) <= 2 or value.isdigit() or value.lower() in STOP_WORDS
        if len(key) == 1 and (code or short):
            self.strict.add((key, entry))

    # --- matching ----------------------------------------------------------------------------
    def canonical(self, token: Token) -> Tuple[str, bool]:
        """The token's stem as the vocabulary spells it, and whether that was a near-miss."""
        word = token.stem
        if word in self.stem_set:
            return word, False
        if len(token.lower) < FUZZY_MIN_LENGTH or word in GRAMMAR_STEMS or token.is_number:
            return word, False
        # a short word may miss one letter, never two ("make" is not "market")
        cutoff = FUZZY_CUTOFF if len(word) > 4 else SHORT_FUZZY_CUTOFF
        found = process.extractOne(word, self.stems, scorer=fuzz.ratio, score_cutoff=cutoff)
        return (found[0], True) if found else (word, False)

    def mentions(self, tokens: Sequence[Token], taken: Iterable[int] = ()) -> List[Mention]:
        """Non-overlapping mentions of the vocabulary in `tokens`, longest first."""
        blocked = set(taken)
        runs: List[List[Token]] = [[]]
        for token in tokens:  # content words, split where another part of the question is
            if token.index in blocked:
                runs.append([])
            elif not token.is_stop or _maybe_code(token):
                runs[-1].append(token)
        found: List[Mention] = []
        for run in runs:
            found += self._match_run(run, tokens)
        return sorted(found, key=lambda m: m.start)

    def _match_run(self, words: List[Token], tokens: Sequence[Token]) -> List[Mention]:
        canon = [self.canonical(t) for t in words]
        candidates = []
        for i in range(len(words)):
            for n in range(min(self.longest, len(words) - i), 0, -1):
                key = tuple(c[0] for c in canon[i : i + n])
                if key in self.phrases:
                    allowed = self._allowed(key, words[i : i + n], tokens)
                    if allowed:
                        candidates.append((n, i, key, allowed))
        chosen: List[Mention] = []
        used: Set[int] = set()
        for n, i, _key, allowed in sorted(candidates, key=lambda c: (-c[0], c[1])):
            span = set(range(i, i + n))
            if span & used:
                continue
            used |= span
            first, last = words[i], words[i + n - 1]
            entries = tuple(sorted(allowed, key=_entry_order))
            said = " ".join(t.text for t in tokens[first.index : last.index + 1])
            fuzzy = any(c[1] for c in canon[i : i + n])
            chosen.append(Mention(first.index, last.index + 1, entries, said, fuzzy))
        return chosen

    def _allowed(self, key, words: List[Token], tokens: Sequence[Token]) -> Set[Entry]:
        """The entries of `key` that this place in the question allows."""
        entries = set(self.phrases[key])
        strict = {e for e in entries if (key, e) in self.strict}
        if strict and not _maybe_code(words[0]):
            entries -= {e for e in strict if not self._next_to(words[0], tokens, e.attribute)}
        if key in self.guarded and not near_user_noun(words[0], tokens):
            entries = {e for e in entries if e.kind != "segment"}
        return entries

    def _next_to(self, word: Token, tokens: Sequence[Token], attribute: str) -> bool:
        """True when the attribute's own name is right before or after `word`, which is not
        a grammar word in small letters ("countries by" is a grouping, not Belarus)."""
        if word.stem in GRAMMAR_STEMS and not word.text.isupper():
            return False
        nouns = {phrase(n) for n in ATTRIBUTES[attribute].nouns} if attribute else set()
        for other in (word.index - 1, word.index + 1):
            if 0 <= other < len(tokens) and (tokens[other].stem,) in nouns:
                return True
        return False

    # --- lookups -----------------------------------------------------------------------------
    def segment_named(self, name: str):
        """The run's segment called `name` (any case), or the one a tier word names."""
        for segment in self.run.segment_names:
            if segment.lower() == name.strip().lower():
                return segment
        mentions = self.mentions(tokenize(name))
        found = {e.key for m in mentions for e in m.of_kind("segment")}
        return found.pop() if len(found) == 1 else None

    def values_of(self, attribute: str) -> List[str]:
        return list(self.run.params.get("values", {}).get(attribute, []))

    def entries(self, kind: str) -> List[Entry]:
        seen = {e for entries in self.phrases.values() for e in entries if e.kind == kind}
        return sorted(seen, key=lambda e: e.key)


def _maybe_code(token: Token) -> bool:
    """ "US", "IN": a stop word written in capitals may be a code."""
    return token.text.isalpha() and token.text.isupper() and len(token.text) > 1


def _entry_order(entry: Entry) -> Tuple[int, bool, str]:
    return (KIND_ORDER.index(entry.kind), not entry.present, entry.key)


def near_user_noun(word: Token, tokens: Sequence[Token]) -> bool:
    """ "the high segment", "low users", "the low and the high segment": a tier word in its
    place (a user or segment noun follows, across "and", "the" and other tier words)."""
    if word.index > 0 and tokens[word.index - 1].stem in USER_NOUN_STEMS:
        return True
    for token in tokens[word.index + 1 : word.index + 6]:
        if token.stem in USER_NOUN_STEMS:
            return True
        if not (token.is_stop or token.stem in GUARDED_TIER_STEMS or token.lower in ("and", "or")):
            break
    content = [t for t in tokens if not t.is_stop]
    return len(content) <= 2  # a follow-up that is just the word ("and the low ones?")


def split_words(text: str) -> List[str]:
    """The stems of a text, for tests and diagnostics."""
    return [t.stem for t in tokenize(text)]


_cache: Dict[int, Vocabulary] = {}
