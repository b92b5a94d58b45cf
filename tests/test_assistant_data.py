"""The assistant's training data: rasa data validate, the test stories, and the held-out set."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot import nlu_eval
from bot.environment import rasa_env
from segmentation.config import PROJECT_DIR

DATA = PROJECT_DIR / "data"
HELDOUT = PROJECT_DIR / "tests" / "nlu" / "heldout.yml"
TEST_STORIES = PROJECT_DIR / "tests" / "test_stories.yml"

SEGMENTS = {"Low Engagement", "Moderate Engagement", "Highly Engaged"}
METRICS = {
    "clicks",
    "distinct_pages",
    "active_days",
    "sessions",
    "recency_days",
    "searches",
    "article_views",
    "total_article_time",
    "avg_article_time",
    "avg_click_time",
}
DIMENSIONS = {"country", "device", "plan"}
QUESTION_INTENTS = {
    "ask_overview",
    "ask_segment_size",
    "ask_segment_profile",
    "ask_metric",
    "compare_segments",
    "lookup_user",
    "list_members",
    "breakdown_segment",
    "targeting_advice",
    "ask_changes",
    "ask_run_info",
    "ask_quality",
    "ask_chart",
    "inform",
}
# Rasa's warnings about things declared but unused, or used but not declared.
PROBLEMS = re.compile(
    r"not used|is not (?:in|defined|listed)|not declared|unused|missing|undefined|"
    r"conflict|was not found|doesn't exist|does not exist|UserWarning",
    re.IGNORECASE,
)
# Printed by Rasa 3.6 for every domain that has slots, whatever their mappings.
KNOWN_NOISE = (
    "Slot auto-fill has been removed in 3.0",
    # Said by Rasa's own action_default_fallback (the core fallback), which no rule names.
    "The utterance 'utter_default' is not used in any story or rule.",
)


def run_rasa(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """The plain `rasa` CLI (not bot.rasa_cli, which hides warnings: here we want to see them)."""
    return subprocess.run(
        [sys.executable, "-m", "rasa", *args],
        cwd=PROJECT_DIR,
        env=rasa_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def domain() -> dict:
    return yaml.safe_load((PROJECT_DIR / "domain.yml").read_text())


def nlu_examples(paths):
    """(intent, text, [(entity, value)]) for every example in the given NLU files."""
    from rasa.shared.nlu.training_data.loading import load_data

    out = []
    for path in paths:
        for message in load_data(str(path)).intent_examples:
            entities = [(e["entity"], str(e["value"])) for e in message.get("entities") or []]
            out.append((message.get("intent"), message.get("text"), entities))
    return out


def training_files():
    return sorted((DATA / "nlu").glob("*.yml"))


def synonyms() -> dict:
    from rasa.shared.nlu.training_data.loading import load_data

    merged = {}
    for path in training_files():
        merged.update(load_data(str(path)).entity_synonyms)
    return merged


# --- rasa data validate ----------------------------------------------------------------------


def test_rasa_data_validate_is_clean():
    result = run_rasa(
        "data", "validate", "--fail-on-warnings", "--domain", "domain.yml", "--data", "data"
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    problems = [
        line
        for line in output.splitlines()
        if PROBLEMS.search(line)
        and " INFO " not in line
        and not any(noise in line for noise in KNOWN_NOISE)
    ]
    assert not problems, "\n".join(problems)
    assert "No story structure conflicts found" in output


# --- the test stories ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def nlu_model():
    return nlu_eval.trained_model()


def test_test_stories_pass(nlu_model, tmp_path):
    out = tmp_path / "results"
    result = run_rasa(
        "test",
        "core",
        "--model",
        str(nlu_model),
        "--stories",
        str(TEST_STORIES),
        "--out",
        str(out),
        "--e2e",
        "--no-plot",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    failed = (out / "failed_test_stories.yml").read_text()
    assert "None of the test stories failed - all good!" in failed, failed
    report = json.loads((out / "story_report.json").read_text())
    n_stories = len(yaml.safe_load(TEST_STORIES.read_text())["stories"])
    assert report["conversation_accuracy"]["correct"] == n_stories, report
    assert report["conversation_accuracy"]["total"] == n_stories, report


# --- the domain and the training data --------------------------------------------------------


def test_domain_declares_the_contract():
    d = domain()
    assert QUESTION_INTENTS | {"greet", "goodbye", "thank", "help", "out_of_scope"} <= set(
        d["intents"]
    )
    assert {"affirm", "deny", "more"} <= set(d["intents"])
    assert set(d["entities"]) == {
        "segment",
        "user_id",
        "number",
        "metric",
        "dimension",
        "dimension_value",
    }
    for name, slot in d["slots"].items():
        assert slot["influence_conversation"] is False, name
    assert d["slots"]["number"]["type"] == "float"
    assert d["slots"]["page"]["type"] == "float"
    assert d["slots"]["topic"]["mappings"] == [{"type": "custom"}]
    assert d["slots"]["page"]["mappings"] == [{"type": "custom"}]
    for entity in ("segment", "user_id", "number", "metric", "dimension", "dimension_value"):
        assert d["slots"][entity]["mappings"] == [{"type": "from_entity", "entity": entity}]
    for response in ("utter_help", "utter_out_of_scope"):
        text = d["responses"][response][0]["text"]
        assert text.count("•") >= 5, f"{response} should list several example questions"


def test_every_question_intent_has_enough_training_examples():
    counts = {}
    for intent, _, _ in nlu_examples(training_files()):
        counts[intent] = counts.get(intent, 0) + 1
    for intent in set(domain()["intents"]):
        assert counts.get(intent, 0) >= 20, (intent, counts.get(intent))
    for intent in QUESTION_INTENTS - {"inform"}:
        assert counts[intent] >= 40, (intent, counts[intent])


def test_annotated_entities_map_to_canonical_values():
    mapping = synonyms()
    canonical = {"segment": SEGMENTS, "metric": METRICS, "dimension": DIMENSIONS}
    for intent, text, entities in nlu_examples(training_files()):
        for entity, value in entities:
            if entity in canonical:
                final = mapping.get(value.lower(), value)
                assert final in canonical[entity], (intent, text, entity, value)


def test_user_ids_and_numbers_are_left_to_the_regexes():
    # Two annotated examples each (the RegexEntityExtractor needs the entity annotated
    # somewhere, Rasa warns below two): more would train DIET to extract them as well,
    # and the two extractors would compete.
    counts = {"user_id": 0, "number": 0}
    for _, _, entities in nlu_examples(training_files()):
        for entity, _ in entities:
            if entity in counts:
                counts[entity] += 1
    assert counts == {"user_id": 2, "number": 2}


# --- the held-out set ------------------------------------------------------------------------


def _tokens(text: str) -> set:
    return set(re.findall(r"[a-z0-9_]+", text.lower()))


def test_heldout_set_covers_every_intent_and_entity():
    examples = nlu_examples([HELDOUT])
    assert len(examples) >= 150
    intents = {intent for intent, _, _ in examples}
    assert intents == set(domain()["intents"])
    entity_types = {entity for _, _, entities in examples for entity, _ in entities}
    assert entity_types == set(domain()["entities"])
    for _, text, entities in examples:
        for entity, value in entities:
            if entity == "segment":
                assert value in SEGMENTS, (text, value)
            if entity == "metric":
                assert value in METRICS, (text, value)
            if entity == "dimension":
                assert value in DIMENSIONS, (text, value)


def test_heldout_set_is_not_in_the_training_data():
    """No held-out sentence, nor a near-copy of a longer one, is trained on."""
    training = [(text, _tokens(text)) for _, text, _ in nlu_examples(training_files())]
    exact = {text.lower().strip(" ?!.") for text, _ in training}
    near = []
    for _, text, _ in nlu_examples([HELDOUT]):
        assert text.lower().strip(" ?!.") not in exact, text
        tokens = _tokens(text)
        if len(tokens) < 4:
            continue
        for other, other_tokens in training:
            overlap = len(tokens & other_tokens) / len(tokens | other_tokens)
            if overlap >= 0.85:
                near.append((text, other))
    assert not near, near
    assert not any(Path(p).resolve() == HELDOUT.resolve() for p in training_files())
