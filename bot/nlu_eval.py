"""Evaluate the trained assistant's NLU on a held-out test set (default tests/nlu/heldout.yml).

Every message is parsed once by the full trained model, exactly as in a conversation, and the
FINAL parse is scored: the intent after the FallbackClassifier (so "nlu_fallback" counts as a
miss), and the entities after all extractors (DIET and regexes) and the EntitySynonymMapper,
de-duplicated by (entity, value). Entities match on type + normalised value (case-folded,
whitespace collapsed, "10.0" == "10"), not on character spans.

    .venv/bin/python -m bot.nlu_eval                         # trains first if the data changed
    .venv/bin/python -m bot.nlu_eval --model models/x.tar.gz --report /tmp/nlu.json

Prints the figures, per-intent and per-entity scores, and a table of failures; writes a JSON
report with --report; exits 1 when intent accuracy or entity micro-F1 is below its threshold.
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
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from bot.environment import QUIET_SETTINGS
from segmentation.config import PROJECT_DIR

DEFAULT_DATA = PROJECT_DIR / "tests" / "nlu" / "heldout.yml"
FALLBACK_INTENT = "nlu_fallback"

Entity = Tuple[str, str]
ParseFn = Callable[[str], Dict[str, Any]]


@dataclass
class Example:
    text: str
    intent: str
    entities: Set[Entity] = field(default_factory=set)


def normalise_value(value: Any) -> str:
    """Case-folded, whitespace-collapsed text; integral floats lose their ".0"."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = re.sub(r"\s+", " ", str(value)).strip().casefold()
    if re.fullmatch(r"\d+\.0+", text):
        text = text.split(".")[0]
    return text


def entity_set(entities: Iterable[Dict[str, Any]]) -> Set[Entity]:
    """(entity type, normalised value) pairs, de-duplicated."""
    return {(str(e["entity"]), normalise_value(e.get("value", ""))) for e in entities}


def load_examples(path: Path) -> List[Example]:
    """The examples of a Rasa NLU YAML file, with gold intents and canonical entity values."""
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    examples = []
    for message in data.intent_examples:
        examples.append(
            Example(
                text=message.get("text"),
                intent=message.get("intent"),
                entities=entity_set(message.get("entities") or []),
            )
        )
    return examples


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


def evaluate(parse: ParseFn, examples: Sequence[Example]) -> Dict[str, Any]:
    """Scores the final parses of `examples`: intent accuracy, entity micro-F1, failures."""
    intent_total: Counter = Counter()
    intent_correct: Counter = Counter()
    confusions: Dict[str, Counter] = defaultdict(Counter)
    entity_counts: Dict[str, Counter] = defaultdict(Counter)
    failures: List[Dict[str, Any]] = []
    extractors: Counter = Counter()

    for example in examples:
        result = parse(example.text)
        intent = (result.get("intent") or {}).get("name")
        confidence = float((result.get("intent") or {}).get("confidence") or 0.0)
        entities = result.get("entities") or []
        for entity in entities:
            extractors[f"{entity.get('entity')} <- {entity.get('extractor')}"] += 1
        predicted = entity_set(entities)
        gold = example.entities

        intent_total[example.intent] += 1
        intent_ok = intent == example.intent
        if intent_ok:
            intent_correct[example.intent] += 1
        else:
            confusions[example.intent][str(intent)] += 1
        for name, _ in predicted & gold:
            entity_counts[name]["tp"] += 1
        for name, _ in predicted - gold:
            entity_counts[name]["fp"] += 1
        for name, _ in gold - predicted:
            entity_counts[name]["fn"] += 1

        if not intent_ok or predicted != gold:
            ranking = result.get("intent_ranking") or []
            failures.append(
                {
                    "text": example.text,
                    "expected_intent": example.intent,
                    "predicted_intent": intent,
                    "confidence": round(confidence, 3),
                    "runner_up": [
                        [r.get("name"), round(float(r.get("confidence", 0.0)), 3)]
                        for r in ranking[:3]
                    ],
                    "missing_entities": sorted(map(list, gold - predicted)),
                    "extra_entities": sorted(map(list, predicted - gold)),
                }
            )

    total = sum(intent_total.values())
    correct = sum(intent_correct.values())
    per_entity = {
        name: _prf(c["tp"], c["fp"], c["fn"]) for name, c in sorted(entity_counts.items())
    }
    micro = _prf(
        sum(c["tp"] for c in entity_counts.values()),
        sum(c["fp"] for c in entity_counts.values()),
        sum(c["fn"] for c in entity_counts.values()),
    )
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
        "examples": total,
        "intent_accuracy": correct / total if total else 0.0,
        "entity_micro": micro,
        "entity_f1": micro["f1"],
        "fallbacks": sum(c[FALLBACK_INTENT] for c in confusions.values()),
        "per_intent": per_intent,
        "per_entity": per_entity,
        "entity_extractors": dict(sorted(extractors.items())),
        "failures": failures,
    }


# --- output -----------------------------------------------------------------------------------


def format_report(report: Dict[str, Any]) -> str:
    lines = [
        f"Held-out examples: {report['examples']}",
        f"Intent accuracy:   {report['intent_accuracy']:.4f}"
        f"  ({report['fallbacks']} fell back to {FALLBACK_INTENT})",
        f"Entity micro-F1:   {report['entity_f1']:.4f}"
        f"  (P {report['entity_micro']['precision']:.4f}, R {report['entity_micro']['recall']:.4f})",
        "",
        f"{'intent':<22} {'n':>4} {'acc':>6}  confused with",
    ]
    for name, row in report["per_intent"].items():
        confused = ", ".join(f"{k} x{v}" for k, v in row["confused_with"].items())
        lines.append(f"{name:<22} {row['support']:>4} {row['accuracy']:>6.2f}  {confused}")
    lines += ["", f"{'entity':<16} {'P':>6} {'R':>6} {'F1':>6} {'tp':>4} {'fp':>4} {'fn':>4}"]
    for name, row in report["per_entity"].items():
        lines.append(
            f"{name:<16} {row['precision']:>6.2f} {row['recall']:>6.2f} {row['f1']:>6.2f}"
            f" {row['tp']:>4} {row['fp']:>4} {row['fn']:>4}"
        )
    failures = report["failures"]
    lines += ["", f"Failures ({len(failures)}):"]
    if failures:
        lines.append(f"{'text':<58} {'expected':<20} {'predicted (conf)':<28} entities")
    for f in failures:
        predicted = f"{f['predicted_intent']} ({f['confidence']:.2f})"
        mark = "" if f["expected_intent"] == f["predicted_intent"] else "!"
        ents = []
        if f["missing_entities"]:
            ents.append("missing " + ", ".join(f"{e}={v}" for e, v in f["missing_entities"]))
        if f["extra_entities"]:
            ents.append("extra " + ", ".join(f"{e}={v}" for e, v in f["extra_entities"]))
        lines.append(
            f"{f['text'][:58]:<58} {f['expected_intent']:<20} {mark + predicted:<28} "
            + "; ".join(ents)
        )
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--model", type=Path, help="trained model (default: ensure_model())")
    args.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Rasa NLU YAML test set")
    args.add_argument("--min-intent-accuracy", type=float, default=0.95)
    args.add_argument("--min-entity-f1", type=float, default=0.95)
    args.add_argument("--report", type=Path, help="write the JSON report here")
    opts = args.parse_args(argv)

    _quiet()
    model = opts.model
    if model is None:
        from bot.model import ensure_model

        model = ensure_model()  # not quiet: say so when it has to train first
    examples = load_examples(opts.data)
    report = evaluate(parser(load_agent(model)), examples)
    report.update(
        {
            "model": str(model),
            "data": str(opts.data),
            "min_intent_accuracy": opts.min_intent_accuracy,
            "min_entity_f1": opts.min_entity_f1,
        }
    )
    passed = (
        report["intent_accuracy"] >= opts.min_intent_accuracy
        and report["entity_f1"] >= opts.min_entity_f1
    )
    report["passed"] = passed
    print(format_report(report))
    if opts.report:
        opts.report.parent.mkdir(parents=True, exist_ok=True)
        opts.report.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\n{'PASS' if passed else 'FAIL'}: intent accuracy {report['intent_accuracy']:.4f}"
        f" (min {opts.min_intent_accuracy}), entity F1 {report['entity_f1']:.4f}"
        f" (min {opts.min_entity_f1})"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
