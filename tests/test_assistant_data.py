"""The assistant's training data: rasa data validate, the test stories, and the NLU test sets."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from bot import nlu_eval
from bot.environment import rasa_env
from segmentation.config import PROJECT_DIR
from segmentation.language.shapes import ANNOTATION, DATA_INTENTS

DATA = PROJECT_DIR / "data"
NLU_TESTS = PROJECT_DIR / "tests" / "nlu"
HELDOUT = NLU_TESTS / "heldout.yml"
DEV = NLU_TESTS / "dev.yml"
TEST_STORIES = PROJECT_DIR / "tests" / "test_stories.yml"

SMALL_TALK = {"greet", "goodbye", "thank", "help", "out_of_scope", "affirm", "deny"}
ENTITY_TYPES = set(nlu_eval.ENTITY_TYPES)
# Words of the end-to-end tests' own data (a feature table with custom segment names
# Dormant/Casual/Regular/Power Users and columns such as Ratings or New Password Request, and
# the Globo click log): the assistant must understand them from the run's vocabulary, so the
# training data never contains them.
END_TO_END_WORDS = re.compile(
    r"\b(?:dormant|casual|regulars?|power|ratings?|rated|passwords?|screen|spent|inr|reviews?|"
    r"last visited|globo)\b",
    re.IGNORECASE,
)
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


def training_files():
    return sorted((DATA / "nlu").glob("*.yml"))


def nlu_examples(paths):
    """(intent, text, [(entity, value, annotated text)]) for every example in the NLU files."""
    from rasa.shared.nlu.training_data.loading import load_data

    out = []
    for path in paths:
        for message in load_data(str(path)).intent_examples:
            text = message.get("text")
            entities = [
                (e["entity"], str(e["value"]), text[e["start"] : e["end"]])
                for e in message.get("entities") or []
            ]
            out.append((message.get("intent"), text, entities))
    return out


def raw_examples(paths):
    """(intent, example line as written, annotations included) of the NLU files."""
    out = []
    for path in paths:
        for item in yaml.safe_load(Path(path).read_text()).get("nlu", []) or []:
            if "intent" not in item:
                continue
            for line in str(item.get("examples", "")).splitlines():
                if line.strip().startswith("- "):
                    out.append((item["intent"], line.strip()[2:]))
    return out


def placeholders(example: str) -> str:
    """An example with each annotated value replaced by its entity type, case-folded and
    without end punctuation: "how many [Champions](segment) users?" -> "how many <segment>
    users"."""
    text = ANNOTATION.sub(lambda m: f"<{_entity_type(m.group())}>", example)
    return re.sub(r"\s+", " ", text).strip(" ?!.,").casefold()


def _entity_type(annotation: str) -> str:
    tail = annotation[annotation.index("]") + 1 :]
    if tail.startswith("("):
        return tail[1:-1].split(":")[0]
    return json.loads(tail)["entity"]


# --- rasa data validate ----------------------------------------------------------------------


def test_rasa_data_validate_is_clean():
    result = run_rasa(
        "data",
        "validate",
        "--fail-on-warnings",
        "--domain",
        "domain.yml",
        "--data",
        "data",
        "--config",
        "config.yml",
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


def test_test_stories_send_every_data_question_to_action_answer():
    for story in yaml.safe_load(TEST_STORIES.read_text())["stories"]:
        steps = story["steps"]
        for step, following in zip(steps, steps[1:]):
            if "intent" not in step:
                continue
            expected = (
                "action_answer"
                if step["intent"] in DATA_INTENTS | {"nlu_fallback"}
                else f"utter_{step['intent']}"
            )
            assert following.get("action") == expected, (story["story"], step)
            assert "[" not in step.get("user", ""), "the model extracts no entities"


# --- the domain and the training data --------------------------------------------------------


def test_domain_declares_the_contract():
    d = domain()
    assert set(d["intents"]) == DATA_INTENTS | SMALL_TALK
    assert set(d["entities"]) == ENTITY_TYPES | {"query"}
    for name, slot in d["slots"].items():
        assert slot["influence_conversation"] is False, name
    assert d["actions"] == ["action_answer"]
    for response in ("utter_help", "utter_out_of_scope"):
        text = d["responses"][response][0]["text"]
        assert text.count("•") >= 5, f"{response} should list several example questions"


def test_every_intent_has_enough_training_examples():
    counts = Counter(intent for intent, _, _ in nlu_examples(training_files()))
    for intent in set(domain()["intents"]):
        assert counts[intent] >= 20, (intent, counts[intent])
    for intent in DATA_INTENTS:
        assert counts[intent] >= 30, (intent, counts[intent])


def test_training_data_maps_no_values():
    """Nothing learns or maps the data's values: no synonyms, no lookup tables, plain
    annotations of the declared types only."""
    from rasa.shared.nlu.training_data.loading import load_data

    for path in training_files():
        data = load_data(str(path))
        assert not data.entity_synonyms, path
        assert not data.lookup_tables, path
    for intent, text, entities in nlu_examples(training_files()):
        for entity, value, said in entities:
            assert entity in ENTITY_TYPES, (intent, text, entity)
            assert value == said, (intent, text, value)


def test_training_data_avoids_the_end_to_end_words():
    for path in sorted(DATA.rglob("*.yml")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            found = END_TO_END_WORDS.search(line)
            assert not found, f"{path.name}:{number}: {found.group()!r} in {line.strip()!r}"


def test_data_values_in_training_sentences_are_annotated():
    """The demo data's attribute values and segment names never appear unannotated in a
    data question's training sentence (an unannotated value would become a shape word)."""
    from segmentation.language.text import tokenize
    from segmentation.language.vocabulary import Vocabulary

    vocabulary = Vocabulary(nlu_eval.demo_run())
    unannotated = []
    for intent, example in raw_examples(training_files()):
        if intent not in DATA_INTENTS:
            continue
        tokens = tokenize(ANNOTATION.sub(" , ", example))
        for mention in vocabulary.mentions(tokens):
            kinds = {e.kind for e in mention.entries if e.present}
            if kinds & {"value", "segment"} and not mention.fuzzy:
                unannotated.append((example, mention.said))
    assert not unannotated, unannotated


# --- the NLU test sets -----------------------------------------------------------------------


@pytest.mark.parametrize("path", [HELDOUT, DEV], ids=["heldout", "dev"])
def test_nlu_test_set_covers_every_intent_and_entity(path):
    examples = nlu_examples([path])
    assert len(examples) >= 150
    intents = Counter(intent for intent, _, _ in examples)
    assert set(intents) == set(domain()["intents"])
    assert all(intents[i] >= 5 for i in intents), intents
    entity_types = {entity for _, _, entities in examples for entity, _, _ in entities}
    assert entity_types == ENTITY_TYPES
    for _, text, entities in examples:
        for _entity, value, said in entities:
            assert value == said, (text, value)
    multi_part = [text for _, text, entities in examples if len(entities) >= 3]
    assert len(multi_part) >= 15, multi_part


@pytest.mark.parametrize("path", [HELDOUT, DEV], ids=["heldout", "dev"])
def test_nlu_test_set_asks_questions_with_parts_the_data_cannot_answer(path):
    """Questions with a part the demo data doesn't have (a region, revenue...), labelled
    with the intent the user meant: the parser leaves those words unaccounted."""
    read = nlu_eval.reader()
    cannot = Counter(
        intent
        for intent, text, _ in nlu_examples([path])
        if intent in DATA_INTENTS and read(text).unaccounted
    )
    assert sum(cannot.values()) >= 20, cannot
    assert len(cannot) >= 10, cannot


def test_nlu_test_sets_are_not_in_the_training_data():
    """No held-out sentence equals a training or development sentence once annotated values
    are replaced by placeholders, and no development sentence equals a training one."""
    training = {placeholders(e) for _, e in raw_examples(training_files())}
    dev = {placeholders(e) for _, e in raw_examples([DEV])}
    heldout = [placeholders(e) for _, e in raw_examples([HELDOUT])]
    assert not [e for e in heldout if e in training], "held-out sentences in the training data"
    assert not [e for e in heldout if e in dev], "held-out sentences in the development set"
    assert not sorted(dev & training), "development sentences in the training data"
    assert len(set(heldout)) == len(heldout), "repeated held-out sentences"
    data_files = {p.resolve() for p in DATA.rglob("*")}
    assert HELDOUT.resolve() not in data_files and DEV.resolve() not in data_files


def test_placeholders():
    assert placeholders("How many [Champions](segment) users in [DE](value)?") == (
        "how many <segment> users in <value>"
    )
    assert placeholders('top [10]{"entity": "number"} users.') == "top <number> users"
