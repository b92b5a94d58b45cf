"""Evaluate the assistant's language understanding on a test set (default tests/nlu/heldout.yml).

Two things are scored, each the way the running assistant does it:

- **Intents**: every message is parsed once by the full trained model, exactly as in a
  conversation, and the FINAL intent is scored (after the FallbackClassifier, so
  "nlu_fallback" counts as a miss).
- **Entities**: the model extracts none (DIET classifies intents only). The data's words are
  read at run time by `segmentation.language.parse.read` against the run's vocabulary, so
  that is what is scored: for each message, the parser's reading against the annotations of
  the test set, as (entity type, text) pairs. Segment names and tier words count as
  `segment`, features as `feature`, attribute values as `value`, date expressions as `date`,
  list sizes as `number` and user ids as `user_id`. Only the examples of data questions
  (`segmentation.language.shapes.DATA_INTENTS`) are read: small talk never reaches the
  parser. The vocabulary is the demo data's
  (`demo_run()`): its three segments, the event features with their labels and aliases, its
  countries, devices and plans; any id-shaped token counts as a user of the run.
  Texts are compared case-folded, without a leading "the"/"in"/"on"... or a trailing
  "users"/"segment"... ("the [top tier](segment)" = "top tier segment"), list sizes as
  numbers ("five" = "5").

    .venv/bin/python -m bot.nlu_eval                         # trains first if the data changed
    .venv/bin/python -m bot.nlu_eval --data tests/nlu/dev.yml --report /tmp/dev.json
    .venv/bin/python -m bot.nlu_eval --entities-only         # the parser only, no model

Prints the figures, per-intent and per-entity-type scores, and a table of failures; writes a
JSON report with --report; exits 1 when intent accuracy or entity micro-F1 is below its
threshold (entity F1 is only reported unless --min-entity-f1 is given).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from bot.environment import QUIET_SETTINGS
from segmentation.config import PROJECT_DIR
from segmentation.language.shapes import DATA_INTENTS

DEFAULT_DATA = PROJECT_DIR / "tests" / "nlu" / "heldout.yml"
FALLBACK_INTENT = "nlu_fallback"
ENTITY_TYPES = ("segment", "feature", "value", "date", "number", "user_id")

Entity = Tuple[str, str]  # (entity type, normalised text)
ParseFn = Callable[[str], Dict[str, Any]]
ReadFn = Callable[[str], "Reading"]


@dataclass
class Example:
    text: str
    intent: str
    entities: List[Entity] = field(default_factory=list)


@dataclass
class Reading:
    """What the run-time parser found in a message."""

    entities: List[Entity]
    unaccounted: List[str]  # words nothing accounted for (the parts it could not apply)


# --- normalising entity texts ------------------------------------------------------------------

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "hundred": 100,
}  # fmt: skip
LEADING = {"the", "a", "an", "in", "on", "for", "during", "over", "within", "of", "our"}
LIST_LEADS = {"top", "bottom", "first", "last", "show", "list", "give", "get", "next", "best",
              "worst", "see", "display"}  # fmt: skip


@functools.lru_cache(maxsize=1)
def _head_nouns() -> frozenset:
    from segmentation.language import lexicon

    return frozenset(lexicon.USER_NOUNS + lexicon.SEGMENT_NOUNS)


def normalise(entity: str, text: str) -> str:
    """The comparable form of an entity's text (see the module docstring)."""
    words = re.findall(r"[\w-]+", str(text).casefold())
    while words and words[0] in LEADING:
        words = words[1:]
    if entity == "segment":
        while len(words) > 1 and words[-1] in _head_nouns():
            words = words[:-1]
    if entity == "number":
        words = [w for w in words if w not in LIST_LEADS]
        if len(words) == 1 and words[0] in NUMBER_WORDS:
            words = [str(NUMBER_WORDS[words[0]])]
        if len(words) == 1 and words[0].isdigit():
            words = [str(int(words[0]))]
    return " ".join(words)


def load_examples(path: Path) -> List[Example]:
    """The examples of a Rasa NLU YAML file, with gold intents and annotated entity texts."""
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    examples = []
    for message in data.intent_examples:
        text = message.get("text")
        entities = [
            (str(e["entity"]), normalise(e["entity"], text[e["start"] : e["end"]]))
            for e in message.get("entities") or []
        ]
        examples.append(Example(text=text, intent=message.get("intent"), entities=entities))
    return examples


# --- the run-time reading of entities -----------------------------------------------------------


def demo_run():
    """An in-memory run over the demo data (segmentation.demo_data), for its vocabulary."""
    from segmentation.demo_data import COUNTRIES, DEFAULT_END, DEVICES, PLANS
    from segmentation.features import EVENT_FEATURES
    from segmentation.results import RunInfo

    specs = list(EVENT_FEATURES.values())
    params = {
        "features": [s.name for s in specs],
        "labels": {s.name: s.label for s in specs},
        "units": {s.name: s.unit for s in specs},
        "lower_is_better": [s.name for s in specs if s.lower_is_better],
        "aliases": {s.name: list(s.aliases) for s in specs if s.aliases},
        "attributes": ["country", "device", "plan", "signup_date"],
        "values": {
            "country": sorted(str(c) for c in COUNTRIES),
            "device": sorted(str(d) for d in DEVICES),
            "plan": sorted(str(p) for p in PLANS),
        },
        "cells": False,
    }
    return RunInfo(
        id=0,
        created_at=DEFAULT_END,
        finished_at=DEFAULT_END,
        source="events",
        algorithm="kmeans",
        k=3,
        n_users=0,
        data_as_of=DEFAULT_END,
        status="complete",
        params=params,
        metrics={},
        segment_names=("Low Engagement", "Moderate Engagement", "Highly Engaged"),
    )


ID_SHAPE = re.compile(
    r"(?:u_?)?\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)


def find_users(candidates: List[str]) -> List[str]:
    """Every id-shaped candidate counts as a user of the run (digits, u-prefixed, UUIDs)."""
    return [c for c in candidates if ID_SHAPE.fullmatch(c)]


def reader(run=None) -> ReadFn:
    """A function text -> what `segmentation.language.parse.read` finds in it."""
    from segmentation.language.parse import read
    from segmentation.language.vocabulary import Vocabulary

    vocabulary = Vocabulary(run or demo_run())

    def read_entities(text: str) -> Reading:
        parts = read(text, vocabulary, find_users)
        found: List[Entity] = []
        for mention in parts.mentions:
            for kind in ("segment", "feature", "value"):
                if mention.of_kind(kind):
                    found.append((kind, normalise(kind, mention.said)))
                    break
        covered = {i for m in parts.mentions for i in range(m.start, m.end)}
        for word in parts.words:
            if word.group == "tier" and word.start not in covered:
                found.append(("segment", normalise("segment", word.said)))
        for _, _, dates in parts.dates:
            found.append(("date", normalise("date", dates.said)))
        if parts.limit is not None:
            found.append(("number", normalise("number", str(parts.limit))))
        for _, user in parts.users:
            found.append(("user_id", normalise("user_id", user)))
        return Reading(found, [t.text for t in parts.unknown])

    return read_entities


# --- the model --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def trained_model() -> Path:
    """ensure_model(), once per process (test sessions share it)."""
    from bot.model import ensure_model

    return ensure_model(quiet=True)


_AGENTS: Dict[str, Any] = {}
_LOOP: Optional[asyncio.AbstractEventLoop] = None


def _quiet() -> None:
    for key, value in QUIET_SETTINGS.items():
        os.environ.setdefault(key, value)
    for name in ("rasa", "tensorflow", "absl", "matplotlib", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Rasa logs every parse through structlog at debug level unless told otherwise.
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)


def _loop() -> asyncio.AbstractEventLoop:
    global _LOOP
    if _LOOP is None or _LOOP.is_closed():
        _LOOP = asyncio.new_event_loop()
    return _LOOP


def load_agent(model_path: Path) -> Any:
    """The trained model loaded in-process (cached per path: it takes ~15 s to load)."""
    key = str(Path(model_path).resolve())
    if key not in _AGENTS:
        _quiet()
        from rasa.core.agent import Agent

        _AGENTS[key] = _loop().run_until_complete(_load(Agent, key))
    return _AGENTS[key]


async def _load(agent_class: Any, path: str) -> Any:
    return agent_class.load(path)


def parser(agent: Any) -> ParseFn:
    """A function text -> the final parse (intent, entities, intent_ranking) of `agent`."""

    def parse(text: str) -> Dict[str, Any]:
        return _loop().run_until_complete(agent.parse_message(text))

    return parse


# --- scoring ----------------------------------------------------------------------------------


def _prf(tp: int, fp: int, fn: int) -> Dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def _pairs(counter: Counter) -> List[List[str]]:
    return sorted([list(entity) for entity in counter.elements()])


def evaluate(
    parse: Optional[ParseFn], examples: Sequence[Example], read: Optional[ReadFn] = None
) -> Dict[str, Any]:
    """Scores `examples`: intent accuracy of `parse` (skipped when None) and entity
    precision/recall/F1 of `read` (the run-time parser; `reader()` by default)."""
    read = read or reader()
    intent_total: Counter = Counter()
    intent_correct: Counter = Counter()
    confusions: Dict[str, Counter] = defaultdict(Counter)
    entity_counts: Dict[str, Counter] = {name: Counter() for name in ENTITY_TYPES}
    failures: List[Dict[str, Any]] = []
    unaccounted: List[Dict[str, Any]] = []

    for example in examples:
        intent_ok = True
        row: Dict[str, Any] = {"text": example.text, "expected_intent": example.intent}
        if parse is not None:
            result = parse(example.text)
            intent = (result.get("intent") or {}).get("name")
            ranking = result.get("intent_ranking") or []
            intent_total[example.intent] += 1
            intent_ok = intent == example.intent
            if intent_ok:
                intent_correct[example.intent] += 1
            else:
                confusions[example.intent][str(intent)] += 1
            row.update(
                {
                    "predicted_intent": intent,
                    "confidence": round(
                        float((result.get("intent") or {}).get("confidence") or 0), 3
                    ),
                    "runner_up": [
                        [r.get("name"), round(float(r.get("confidence", 0.0)), 3)]
                        for r in ranking[:3]
                    ],
                }
            )
        if example.intent not in DATA_INTENTS:  # never read by the run-time parser
            if not intent_ok:
                failures.append({**row, "missing_entities": [], "extra_entities": []})
            continue
        reading = read(example.text)
        gold, found = Counter(example.entities), Counter(reading.entities)
        hits, missing, extra = gold & found, gold - found, found - gold
        for name, _ in hits.elements():
            entity_counts.setdefault(name, Counter())["tp"] += 1
        for name, _ in extra.elements():
            entity_counts.setdefault(name, Counter())["fp"] += 1
        for name, _ in missing.elements():
            entity_counts.setdefault(name, Counter())["fn"] += 1
        if reading.unaccounted:
            unaccounted.append({"text": example.text, "words": reading.unaccounted})
        if not intent_ok or missing or extra:
            row.update(
                {
                    "missing_entities": _pairs(missing),
                    "extra_entities": _pairs(extra),
                    "unaccounted": reading.unaccounted,
                }
            )
            failures.append(row)

    total = sum(intent_total.values())
    correct = sum(intent_correct.values())
    per_entity = {name: _prf(c["tp"], c["fp"], c["fn"]) for name, c in entity_counts.items()}
    micro = _prf(*(sum(c[k] for c in entity_counts.values()) for k in ("tp", "fp", "fn")))
    per_intent = {
        name: {
            "support": intent_total[name],
            "correct": intent_correct[name],
            "accuracy": intent_correct[name] / intent_total[name],
            "confused_with": dict(confusions[name]),
        }
        for name in sorted(intent_total)
    }
    return {
        "examples": len(examples),
        "intents_scored": parse is not None,
        "intent_accuracy": correct / total if total else 0.0,
        "fallbacks": sum(c[FALLBACK_INTENT] for c in confusions.values()),
        "entity_micro": micro,
        "entity_f1": micro["f1"],
        "per_intent": per_intent,
        "per_entity": per_entity,
        "unaccounted": unaccounted,
        "failures": failures,
    }


# --- output -----------------------------------------------------------------------------------


def format_report(report: Dict[str, Any]) -> str:
    micro = report["entity_micro"]
    lines = [f"Examples:          {report['examples']}"]
    if report["intents_scored"]:
        lines.append(
            f"Intent accuracy:   {report['intent_accuracy']:.4f}"
            f"  ({report['fallbacks']} fell back to {FALLBACK_INTENT})"
        )
    lines += [
        f"Entity micro-F1:   {report['entity_f1']:.4f}"
        f"  (P {micro['precision']:.4f}, R {micro['recall']:.4f}; run-time parser, demo data)",
        "",
    ]
    if report["intents_scored"]:
        lines.append(f"{'intent':<22} {'n':>4} {'acc':>6}  confused with")
        for name, row in report["per_intent"].items():
            confused = ", ".join(f"{k} x{v}" for k, v in row["confused_with"].items())
            lines.append(f"{name:<22} {row['support']:>4} {row['accuracy']:>6.2f}  {confused}")
        lines.append("")
    lines.append(f"{'entity':<16} {'P':>6} {'R':>6} {'F1':>6} {'tp':>4} {'fp':>4} {'fn':>4}")
    for name, row in report["per_entity"].items():
        lines.append(
            f"{name:<16} {row['precision']:>6.2f} {row['recall']:>6.2f} {row['f1']:>6.2f}"
            f" {row['tp']:>4} {row['fp']:>4} {row['fn']:>4}"
        )
    failures = report["failures"]
    lines += ["", f"Failures ({len(failures)}):"]
    for f in failures:
        parts = []
        if "predicted_intent" in f and f["predicted_intent"] != f["expected_intent"]:
            parts.append(
                f"intent {f['expected_intent']} -> {f['predicted_intent']} ({f['confidence']:.2f})"
            )
        if f["missing_entities"]:
            parts.append("missing " + ", ".join(f"{e}={v!r}" for e, v in f["missing_entities"]))
        if f["extra_entities"]:
            parts.append("extra " + ", ".join(f"{e}={v!r}" for e, v in f["extra_entities"]))
        lines.append(f"  {f['text']}\n      " + "; ".join(parts))
    return "\n".join(lines)


def _intents_of(examples: Iterable[Example]) -> Dict[str, int]:
    return dict(Counter(e.intent for e in examples))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--model", type=Path, help="trained model (default: ensure_model())")
    args.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Rasa NLU YAML test set")
    args.add_argument("--min-intent-accuracy", type=float, default=0.95)
    args.add_argument(
        "--min-entity-f1", type=float, default=0.0, help="default 0: entity F1 is reported"
    )
    args.add_argument(
        "--entities-only", action="store_true", help="score the run-time parser only (no model)"
    )
    args.add_argument("--report", type=Path, help="write the JSON report here")
    opts = args.parse_args(argv)

    _quiet()
    examples = load_examples(opts.data)
    parse = None
    model = None
    if not opts.entities_only:
        model = opts.model
        if model is None:
            from bot.model import ensure_model

            model = ensure_model()  # not quiet: say so when it has to train first
        parse = parser(load_agent(model))
    report = evaluate(parse, examples)
    report.update(
        {
            "model": str(model) if model else None,
            "data": str(opts.data),
            "intents": _intents_of(examples),
            "min_intent_accuracy": opts.min_intent_accuracy,
            "min_entity_f1": opts.min_entity_f1,
        }
    )
    passed = report["entity_f1"] >= opts.min_entity_f1 and (
        opts.entities_only or report["intent_accuracy"] >= opts.min_intent_accuracy
    )
    report["passed"] = passed
    print(format_report(report))
    if opts.report:
        opts.report.parent.mkdir(parents=True, exist_ok=True)
        opts.report.write_text(json.dumps(report, indent=2) + "\n")
    summary = [f"entity F1 {report['entity_f1']:.4f} (min {opts.min_entity_f1})"]
    if not opts.entities_only:
        summary.insert(
            0,
            f"intent accuracy {report['intent_accuracy']:.4f} (min {opts.min_intent_accuracy})",
        )
    print(f"\n{'PASS' if passed else 'FAIL'}: " + ", ".join(summary))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
