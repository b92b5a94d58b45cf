"""The words that shape questions in the assistant's training data.

Training sentences teach the *shapes* of questions; the values in them are annotated as
entities. Every word of a data question's training sentence outside its annotations is a
shape word: a word the assistant knows how to ask with ("how", "many", "tier", "look",
"like"...). A word of a question that is neither a shape word, a stop word, a part of the
grammar (`lexicon`) nor in the data's vocabulary is a part of the question the assistant
could not account for.

Only the data-question intents count (`DATA_INTENTS`): small talk and out-of-scope examples
("weather in London", "book a flight") are full of words the assistant can't apply to the
data, and must not make them look known.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import AbstractSet, FrozenSet, Iterable, Iterator, Optional

import yaml

from segmentation.config import PROJECT_DIR
from segmentation.language.text import tokenize

NLU_DIR = PROJECT_DIR / "data" / "nlu"
# [text](entity) and [text]{"entity": ...}: the annotated values.
ANNOTATION = re.compile(r"\[[^\]]*\](?:\([^)]*\)|\{[^}]*\})")
# The intents of questions about the data (domain.yml); not small talk, help or out_of_scope.
DATA_INTENTS: FrozenSet[str] = frozenset(
    {
        "ask_overview",
        "ask_segment_size",
        "ask_segment_profile",
        "ask_metric",
        "compare_segments",
        "breakdown_segment",
        "targeting_advice",
        "ask_chart",
        "lookup_user",
        "list_members",
        "more",
        "ask_changes",
        "ask_trend",
        "ask_run_info",
        "ask_quality",
        "ask_data_info",
        "inform",
    }
)


def training_sentences(
    folder: Path = NLU_DIR, intents: Optional[AbstractSet[str]] = None
) -> Iterator[str]:
    """The intent examples of the NLU files in `folder` (all intents when `intents` is None),
    annotations included."""
    for path in sorted(folder.glob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for item in document.get("nlu", []) or []:
            if "intent" not in item:
                continue
            if intents is not None and item["intent"] not in intents:
                continue
            for line in str(item.get("examples", "")).splitlines():
                line = line.strip()
                if line.startswith("- "):
                    yield line[2:]


def unannotated_words(sentences: Iterable[str]) -> FrozenSet[str]:
    """The stems of the words outside entity annotations."""
    words = set()
    for sentence in sentences:
        for token in tokenize(ANNOTATION.sub(" ", sentence)):
            words.add(token.stem)
    return frozenset(words)


def shape_words(folder: Path = NLU_DIR, intents: Iterable[str] = DATA_INTENTS) -> FrozenSet[str]:
    """Stems of the shape words of the `intents` examples (empty when the data is not there)."""
    return _shape_words(folder, frozenset(intents))


@functools.lru_cache(maxsize=4)
def _shape_words(folder: Path, intents: FrozenSet[str]) -> FrozenSet[str]:
    if not folder.is_dir():
        return frozenset()
    return unannotated_words(training_sentences(folder, intents))
