"""Slack, whatever the transport: screening payloads and handing them to the assistant.

Both Slack channels use `SlackHandler`: the Events API (bot/slack.py, signed HTTP requests)
and Socket Mode (bot/slack_socket.py, envelopes over a WebSocket). Given a payload, an
`event_callback` (an @mention or a direct message) or a `block_actions` click, it:

- tells a delivery seen before (the event_id, or the click's trigger_id) from a first one;
- refuses payloads whose fields are not what Slack sends (`Refused`, a 400 on the Events API);
- ignores teams and channels outside SLACK_ALLOWED_TEAMS / SLACK_ALLOWED_CHANNELS, the bot's
  own messages (bot_id, subtype bot_message, the bot's user id) and message subtypes that are
  not a person's words (edits, joins...);
- answers a message longer than the REST channel's limit with a polite "too long" in its
  thread instead of passing it on;
- hands the rest to the assistant as a `UserMessage` (input channel "slack") whose output
  channel, `SegmentSlackBot` (bot/slack_output.py), answers in the thread;
- replaces the buttons of a clicked message by "<user> chose <title>" (no double clicks).

Parsing reuses the static helpers of Rasa's `SlackInput` (user message, mention removal,
interactive values), so both channels read Slack exactly as Rasa's connector does.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.slack import SlackInput
from rasa.shared.exceptions import InvalidConfigException

from bot.rest import TOO_LONG, too_long
from bot.slack_checks import checked_action, checked_event
from bot.slack_output import (
    DEFAULT_API_URL,
    SEND_ERRORS,
    SegmentSlackBot,
    api_base_url,
    pacer,
    slack_escape,
    web_client,
)

logger = logging.getLogger(__name__)

# The assistant sees both Slack channels as "slack" (charts are uploaded, as for the webhook).
INPUT_CHANNEL = "slack"
GRANULARITIES = ("thread", "channel", "sender")
# Message subtypes that carry a person's words; every other subtype is ignored.
USER_SUBTYPES = {None, "", "file_share", "thread_broadcast", "me_message"}
SETTING_KEYS = ("use_threads", "conversation_granularity", "api_url")
LIST_KEYS = ("allowed_channels", "allowed_teams")


# --- settings --------------------------------------------------------------------------------
def split_ids(value: Any) -> List[str]:
    """ "C1, C2" or ["C1", "C2"] -> ["C1", "C2"]."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [item.strip() for item in items if item and item.strip()]


def settings_from_env(env: Mapping[str, str]) -> Dict[str, Any]:
    """Non-secret channel settings from the environment (for the credentials file)."""
    granularity = env.get("SLACK_CONVERSATION_GRANULARITY", "").strip() or "thread"
    return {
        "use_threads": True,
        "conversation_granularity": granularity,
        "api_url": api_base_url(env.get("SLACK_API_URL")),
        "allowed_channels": split_ids(env.get("SLACK_ALLOWED_CHANNELS")),
        "allowed_teams": split_ids(env.get("SLACK_ALLOWED_TEAMS")),
    }


def merged_settings(credentials: Mapping[str, Any], env: Mapping[str, str]) -> Dict[str, Any]:
    """The credentials file's settings, falling back to the environment's for missing ones."""
    defaults = settings_from_env(env)
    merged = {
        key: credentials[key] if credentials.get(key) is not None else defaults[key]
        for key in SETTING_KEYS + LIST_KEYS
    }
    for key in LIST_KEYS:
        merged[key] = split_ids(merged[key])
    return merged


def conversation_id(
    granularity: str, sender: Optional[str], channel: Optional[str], thread: Optional[str]
) -> Optional[str]:
    """The conversation (tracker) id: per person, per person and channel, or per thread."""
    if granularity == "channel" and sender and channel:
        return f"{sender}_{channel}"
    if granularity == "thread" and sender and channel and thread:
        return f"{sender}_{channel}_{thread}"
    return sender


# --- replay protection -----------------------------------------------------------------------
class SeenCache:
    """Keys seen in the last `ttl` seconds (at most `max_items`): a replay detector."""

    def __init__(self, ttl: float, max_items: int = 100_000) -> None:
        self.ttl = ttl
        self.max_items = max_items
        self._items: "OrderedDict[str, float]" = OrderedDict()
        self._lock = threading.Lock()

    def seen_before(self, key: str, now: Optional[float] = None) -> bool:
        """True if `key` was seen within `ttl`; records it otherwise."""
        now = time.time() if now is None else now
        with self._lock:
            while self._items:
                oldest, stamp = next(iter(self._items.items()))
                if now - stamp <= self.ttl and len(self._items) < self.max_items:
                    break
                self._items.popitem(last=False)
            if key in self._items:
                return True
            self._items[key] = now
            return False


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def click_channel(body: Dict[str, Any]) -> Optional[str]:
    """The conversation a button was clicked in."""
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")


# --- the handler -----------------------------------------------------------------------------
class SlackHandler:
    """Screens Slack payloads and turns the rest into messages for the assistant."""

    def __init__(
        self,
        token: str,
        api_url: str = DEFAULT_API_URL,
        proxy: Optional[str] = None,
        use_threads: bool = True,
        granularity: str = "thread",
        allowed_channels: Iterable[str] = (),
        allowed_teams: Iterable[str] = (),
        slack_channel: Optional[str] = None,
    ) -> None:
        if granularity not in GRANULARITIES:
            raise InvalidConfigException(
                f"conversation_granularity must be one of {', '.join(GRANULARITIES)}, "
                f"not {granularity!r}"
            )
        self.token = token
        self.api_url = api_base_url(api_url)
        self.proxy = proxy
        self.use_threads = use_threads
        self.granularity = granularity
        self.allowed_channels = set(allowed_channels)
        self.allowed_teams = set(allowed_teams)
        self.slack_channel = slack_channel
        self.client = web_client(token, self.api_url, proxy)
        self.seen_deliveries = SeenCache(ttl=3600)
        self.bot_user_id: Optional[str] = None
        self._identity_checked: Optional[float] = None
        self._background_tasks: set = set()

    @classmethod
    def from_settings(
        cls, token: str, settings: Mapping[str, Any], proxy: Optional[str] = None, **kwargs: Any
    ) -> "SlackHandler":
        """A handler for the settings of `merged_settings`."""
        return cls(
            token,
            api_url=settings["api_url"],
            proxy=proxy,
            use_threads=bool(settings["use_threads"]),
            granularity=settings["conversation_granularity"],
            allowed_channels=settings["allowed_channels"],
            allowed_teams=settings["allowed_teams"],
            **kwargs,
        )

    # -- who am I ---------------------------------------------------------------------------
    async def identify(self) -> Optional[str]:
        """The bot's own user id (auth.test), looked up once; retried at most once a minute."""
        checked = self._identity_checked
        if self.bot_user_id or (checked is not None and time.monotonic() - checked < 60):
            return self.bot_user_id
        self._identity_checked = time.monotonic()
        try:
            answer = await self.client.auth_test()
            self.bot_user_id = answer.get("user_id") or None
        except SEND_ERRORS as exc:
            logger.warning("auth.test failed, the bot's user id is unknown for now: %s", exc)
        return self.bot_user_id

    def own_ids(self, body: Dict[str, Any]) -> set:
        ids = {self.bot_user_id} if self.bot_user_id else set()
        for item in body.get("authorizations") or []:
            if isinstance(item, dict) and item.get("is_bot") and item.get("user_id"):
                ids.add(item["user_id"])
        return ids

    def output_channel(self, channel: Optional[str], thread_id: Optional[str]) -> SegmentSlackBot:
        """Where answers go: `channel` (or the configured one), in thread `thread_id`."""
        return SegmentSlackBot(
            self.token, channel or self.slack_channel, thread_id, self.proxy, self.api_url
        )

    # -- screening --------------------------------------------------------------------------
    def first_delivery(self, body: Dict[str, Any]) -> bool:
        """False for an event (event_id) or a click (trigger_id) delivered before."""
        key = body.get("event_id") or body.get("trigger_id")
        return not key or not self.seen_deliveries.seen_before(str(key))

    def allowed(self, team_ids: Iterable[Optional[str]], channel: Optional[str]) -> bool:
        if self.allowed_teams and not self.allowed_teams.intersection(t for t in team_ids if t):
            return False
        if self.allowed_channels and channel not in self.allowed_channels:
            return False
        return True

    async def screen(self, body: Dict[str, Any]) -> Optional[str]:
        """Why this payload is not served ("not served here", "ignored"), or None to serve it."""
        try:  # usually cached; never let a slow Web API hold up the acknowledgement
            await asyncio.wait_for(self.identify(), timeout=2.0)
        except asyncio.TimeoutError:
            logger.warning("auth.test is slow; checking the bot's own messages without it")
        if body.get("type") == "event_callback":
            return self.screen_event(body)
        if body.get("type") == "block_actions":
            return self.screen_action(body)
        return None

    def screen_event(self, body: Dict[str, Any]) -> Optional[str]:
        event = checked_event(body.get("event"))
        teams = [_text(body.get("team_id")), _text(body.get("enterprise_id")), event.get("team")]
        if not self.allowed(teams, event.get("channel")):
            logger.warning(
                "Ignored a Slack event from team %s channel %s (not in the allow-list)",
                body.get("team_id"),
                event.get("channel"),
            )
            return "not served here"
        if (
            event.get("bot_id")
            or event.get("subtype") not in USER_SUBTYPES
            or event.get("user") in self.own_ids(body)
        ):
            return "ignored"
        if too_long(event.get("text") or ""):
            if event.get("channel"):
                thread = event.get("thread_ts") or event.get("ts")
                self.background(self.say_too_long(event["channel"], thread))
            return "too long"
        return None

    async def say_too_long(self, channel: str, thread: Optional[str]) -> None:
        """Answer an over-long message in its thread instead of passing it on."""
        await pacer.wait(channel)
        try:
            await self.client.chat_postMessage(
                channel=channel,
                thread_ts=thread,
                text=f"Sorry, I can't take that message: {TOO_LONG}. Could you ask more briefly?",
            )
        except SEND_ERRORS as exc:
            logger.error("Could not answer an over-long message in %s: %s", channel, exc)

    def screen_action(self, body: Dict[str, Any]) -> Optional[str]:
        checked_action(body)
        channel = click_channel(body)
        teams = [
            (body.get("team") or {}).get("id"),
            (body.get("user") or {}).get("team_id"),
            (body.get("enterprise") or {}).get("id"),
        ]
        if not self.allowed(teams, channel):
            logger.warning("Ignored a Slack click in channel %s (not in the allow-list)", channel)
            return "not served here"
        return None

    # -- messages ---------------------------------------------------------------------------
    def _users(self, users: List[Optional[str]]) -> List[str]:
        found = [u for u in users if u]
        if self.bot_user_id and self.bot_user_id not in found:
            found.append(self.bot_user_id)
        return found

    def message(self, body: Dict[str, Any]) -> Optional[Tuple[str, Optional[str], Dict]]:
        """(text, conversation id, metadata) of a person's message or click, else None."""
        if body.get("type") == "event_callback":
            if not SlackInput._is_user_message(body):
                return None
            event = body["event"]
            authorizations = body.get("authorizations") or [{}]
            metadata = {
                "out_channel": event.get("channel"),
                "thread_id": event.get("thread_ts", event.get("ts")),
                "users": self._users(
                    list(body.get("authed_users") or [authorizations[0].get("user_id")])
                ),
            }
            if not (
                event.get("channel_type") == "im"
                or event.get("type") == "app_mention"
                or metadata["out_channel"] == self.slack_channel
            ):
                return None
            text = SlackInput._sanitize_user_message(event["text"], metadata["users"])
            sender = event.get("user")
        elif SlackInput._is_interactive_message(body):
            text = SlackInput._get_interactive_response(body["actions"][0])
            if text is None:  # e.g. a link button: nothing to say to the assistant
                return None
            message = body.get("message") or {}
            sender = (body.get("user") or {}).get("id")
            metadata = {
                "out_channel": click_channel(body),
                "thread_id": message.get("thread_ts", message.get("ts")),
                "users": self._users([sender]),
            }
        else:
            return None
        thread = metadata["thread_id"]
        return (
            text,
            conversation_id(self.granularity, sender, metadata["out_channel"], thread),
            metadata,
        )

    def dispatch(
        self, body: Dict[str, Any], on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> bool:
        """Hand a person's message or click to the assistant (in the background); False when
        the payload carries nothing to answer."""
        found = self.message(body)
        if found is None:
            logger.debug("A Slack payload that is not a person's message: skipped")
            return False
        text, sender, metadata = found
        thread = metadata["thread_id"] if self.use_threads else None
        message = UserMessage(
            text,
            self.output_channel(metadata["out_channel"], thread),
            sender,
            input_channel=INPUT_CHANNEL,
            metadata=metadata,
        )
        self.background(on_new_message(message))
        action = (body.get("actions") or [{}])[0]
        if body.get("type") == "block_actions" and action.get("type") == "button":
            self.background(self.mark_choice(body, metadata["out_channel"], action))
        return True

    def background(self, job: Awaitable[Any]) -> None:
        """Run `job` without waiting for it (keeping a reference until it is done)."""
        task = asyncio.ensure_future(job)
        self._background_tasks.add(task)
        task.add_done_callback(self._background_tasks.discard)

    async def mark_choice(self, body: Dict[str, Any], channel: str, action: Dict) -> None:
        """Replace the clicked message's buttons by "<user> chose <title>" (no double clicks)."""
        message = body.get("message") or {}
        if not message.get("ts") or not channel:
            return
        title = _text((action.get("text") or {}).get("text")) or "an option"
        user = (body.get("user") or {}).get("id")
        who = f"<@{user}>" if user else "Someone"
        blocks = [b for b in message.get("blocks") or [] if b.get("type") != "actions"]
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"{who} chose *{slack_escape(title)}*"}],
            }
        )
        await pacer.wait(channel)
        try:
            await self.client.chat_update(
                channel=channel, ts=message["ts"], text=message.get("text") or title, blocks=blocks
            )
        except SEND_ERRORS as exc:
            logger.warning("Could not update the clicked message: %s", exc)
