"""Tokens with their positions, stems and stop words."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import List

import snowballstemmer
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

# UUIDs, ISO dates, words (with inner hyphens, dots, underscores: "sign-up", "u_123"), %, #.
TOKEN = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\d{4}-\d{2}-\d{2}"
    r"|\w+(?:[-.]\w+)*"
    r"|[%#]"
)
APOSTROPHES = "'\u2019"
# Words the grammar needs, so they are never dropped as stop words.
KEPT = {
    "most", "least", "top", "bottom", "many", "few", "fewer", "fewest", "first", "last",
    "per", "each", "every", "all", "more", "less", "before", "after", "since", "between",
    "by", "over", "under", "not", "no", "without", "except", "only", "other", "same",
    "previous", "next", "above", "below", "much", "during", "until", "whole", "total",
}  # fmt: skip
STOP_WORDS = frozenset(w for w in ENGLISH_STOP_WORDS if w not in KEPT) | {
    "s", "t", "d", "ll", "ve", "re", "m", "pls", "please", "thanks", "thank", "hey", "hi",
    "ok", "okay", "um", "uh", "just", "like", "really", "actually", "exactly", "currently",
    "right", "now", "today", "kindly", "quick", "quickly", "tell", "let", "know", "want",
    "wanna", "need", "would", "could", "can", "you", "me", "us", "we", "our", "i", "a",
}  # fmt: skip

_stemmer = snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    """The English stem of a lower-case word ("searches" -> "search")."""
    return _stemmer.stemWord(word)


@dataclass(frozen=True)
class Token:
    """A word of the question: its text, where it is, and its lower-case stem."""

    index: int
    text: str
    start: int
    end: int

    @property
    def lower(self) -> str:
        return self.text.lower()

    @property
    def stem(self) -> str:
        return stem(self.lower)

    @property
    def is_stop(self) -> bool:
        return self.lower in STOP_WORDS

    @property
    def is_number(self) -> bool:
        return self.text.isdigit()


def tokenize(text: str) -> List[Token]:
    """The words of `text` in order; possessives lose their "'s" ("u0042's" -> "u0042")."""
    words = [
        (m.group(), m.start(), m.end())
        for m in TOKEN.finditer(text)
        if not (m.group().lower() == "s" and m.start() > 0 and text[m.start() - 1] in APOSTROPHES)
    ]
    return [Token(i, word, start, end) for i, (word, start, end) in enumerate(words)]


def reindex(tokens: List[Token]) -> List[Token]:
    """The same tokens numbered 0..n-1 (after filtering)."""
    return [Token(i, t.text, t.start, t.end) for i, t in enumerate(tokens)]
