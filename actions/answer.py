"""action_answer: every data question, follow-up and button — understand -> one query -> render.

The words are read against the current run (`segmentation.language`), the query runs in the
query layer, and the result is rendered once (`segmentation.render`) in the channel's markup.
A question with a part that can't be applied gets no number: the reply says which part and
what can be asked instead. Database work runs on worker threads with a time limit, so one slow
question never blocks the action server.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Text, Tuple, Union

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import replies
from actions.common import WORKERS, Turn, queries
from segmentation import aggregate
from segmentation.errors import DatabaseUnavailable, NoDataError, SegmentationError
from segmentation.language.interpret import Understanding, understand
from segmentation.language.vocabulary import Vocabulary
from segmentation.query import Query
from segmentation.render import render
from segmentation.render.phrases import notes

log = logging.getLogger(__name__)
# Longer than the servers' database read limit (8 s), so a hung database is reported as such.
ANSWER_SECONDS = float(os.environ.get("SI_ANSWER_SECONDS", "10"))
# A CSV export writes every matching user, so it gets its own, longer limit.
EXPORT_SECONDS = float(os.environ.get("SI_EXPORT_SECONDS", "25"))  # < SI_ACTION_TIMEOUT
Messages = List[Dict[str, Any]]
Answer = Tuple[Messages, List[EventType]]


class ActionAnswer(Action):
    """Answers any question about the segmentation data (see the module docstring)."""

    def name(self) -> Text:
        return "action_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        """Work out the answer off the event loop (reading the question, then running its
        query, each within its time limit), then send it."""
        turn = Turn.from_tracker(tracker)
        loop = asyncio.get_running_loop()
        limit, query = ANSWER_SECONDS, None
        deadline = loop.time() + ANSWER_SECONDS
        try:
            planned = await asyncio.wait_for(
                loop.run_in_executor(WORKERS, guarded, plan, turn), ANSWER_SECONDS
            )
            if isinstance(planned, Planned):
                query = planned.query
                limit = EXPORT_SECONDS if query.export else max(0.5, deadline - loop.time())
                planned = await asyncio.wait_for(
                    loop.run_in_executor(WORKERS, guarded, finish, planned), limit
                )
            messages, events = planned
        except asyncio.TimeoutError:
            log.error("answer took longer than %.0f s: %r", limit, turn.text)
            slow = replies.TOO_SLOW_EXPORT if query is not None and query.export else None
            messages, events = [{"text": slow or replies.TOO_SLOW}], []
        for message in messages:
            dispatcher.utter_message(**message)
        return events


@dataclass
class Planned:
    """A question read into a query, ready to run."""

    turn: Turn
    understanding: Understanding

    @property
    def query(self) -> Query:
        return self.understanding.query


def guarded(step: Callable[[Any], Any], argument: Any) -> Any:
    """`step(argument)`, with database and data errors turned into replies."""
    try:
        return step(argument)
    except DatabaseUnavailable:
        log.exception("database unavailable")
        return [{"text": replies.NO_DATABASE}], []
    except NoDataError as exc:
        return [{"text": replies.sentence(str(exc))}], []
    except SegmentationError as exc:
        return [{"text": f"Sorry, that didn't work: {exc}"}], []
    except Exception:  # noqa: BLE001 - a reply, never silence
        turn = argument.turn if isinstance(argument, Planned) else argument
        log.exception("answering %r failed", getattr(turn, "text", ""))
        return [{"text": replies.FAILED}], []


def plan(turn: Turn) -> Union[Planned, Answer]:
    """The question read against the current run: a query to run, or the reply that asks
    back or says what can't be applied."""
    run = queries().current_run()
    vocabulary = Vocabulary.for_run(run)
    previous = _previous(turn)
    understanding = _understand(turn, vocabulary, previous, run)
    if understanding.read_nothing and not understanding.problems:
        # no word of it is known ("what's bitcoin trading at"): never "Which segment?"
        return replies.clarify(understanding, turn, vocabulary), []
    if understanding.ask:
        return replies.ask(understanding, turn), _remember(understanding.query)
    if not understanding.answerable:
        # (a message with no known word was answered above)
        if turn.intent == "nlu_fallback" and not understanding.problems:
            return replies.clarify(understanding, turn, vocabulary), []
        return replies.cannot_apply(understanding, vocabulary, turn), []
    return Planned(turn, understanding)


def finish(planned: Planned) -> Answer:
    """Run the query and render its answer in the channel's markup."""
    turn, understanding, query = planned.turn, planned.understanding, planned.query
    result = queries().answer(query)
    reply = render(result, query)
    notes(reply, understanding.notes)
    messages = replies.messages(reply, result, query, turn)
    return messages, _remember(query)


def _previous(turn: Turn) -> Optional[Query]:
    if not turn.previous:
        return None
    try:
        return Query.loads(turn.previous)
    except (ValueError, KeyError, TypeError):
        return None


def _understand(turn: Turn, vocabulary: Vocabulary, previous: Optional[Query], run):
    """A button's full question as it is, the next page of a list, or the words read."""
    payload = turn.entities.get("query")
    if payload:
        try:
            query = Query.loads(str(payload))
        except (ValueError, KeyError, TypeError):
            return Understanding(None, problems=["that button's question could not be read"])
        return Understanding(query)
    if turn.intent == "more" and previous is not None and previous.measure == "list":
        return Understanding(previous.with_(offset=previous.offset + previous.limit))
    if turn.intent == "more":
        return Understanding(
            None, problems=['more of what? Ask for a list first, e.g. "top 10 users"']
        )

    def find_users(candidates: List[str]) -> List[str]:
        with queries().connection() as conn:
            return aggregate.users_exist(conn, run, candidates)

    intent = None if turn.intent in ("nlu_fallback", None) else turn.intent
    return understand(turn.text, vocabulary, intent, previous, find_users)


def _remember(query: Optional[Query]) -> List[EventType]:
    return [SlotSet("query", query.dumps())] if query is not None else []
