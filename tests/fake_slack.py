"""A local stand-in for Slack's Web API, recording what the bot calls.

`FakeSlack` is an HTTP server on 127.0.0.1 speaking the Web API protocol: form, query or JSON
arguments, `Authorization: Bearer xoxb-...`, HTTP 200 with `{"ok": true, ...}` or
`{"ok": false, "error": "..."}`. It implements auth.test, chat.postMessage, chat.update and
the external file upload flow (files.getUploadURLExternal -> POST the bytes to upload_url ->
files.completeUploadExternal), records every call, and checks what real Slack would refuse
(bad token, missing channel or text, oversized or malformed blocks, unknown uploads).
`rate_limit(method, retry_after, times)` makes the next calls of a method answer HTTP 429
with a Retry-After header and `{"ok": false, "error": "ratelimited"}`, as Slack does.

With `enable_socket_mode(app_token)` it also answers apps.connections.open, which takes only
the app-level token, in the Authorization header, and returns a URL of the Socket Mode
endpoint (tests/fake_socket_mode.py). Bot methods refuse the app token and vice versa
(`not_allowed_token_type`), as Slack does.

What Slack sends the bot (events, clicks, signed webhook requests) is in tests/slack_payloads.py.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlparse

from tests.fake_socket_mode import FakeSocketMode, wait_on
from tests.slack_payloads import (  # noqa: F401 - SlackSigner, new_ts and unique: re-exported
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    TEAM_ID,
    SlackSigner,
    new_ts,
    unique,
)


@dataclass
class Call:
    """One Web API call as the server received it."""

    method: str
    args: Dict[str, Any]
    token: Optional[str]
    content_type: str
    response: Dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)  # when it arrived
    status: int = 200


@dataclass
class Upload:
    """A file going through the external upload flow."""

    file_id: str
    filename: str
    length: int
    alt_txt: Optional[str] = None
    data: Optional[bytes] = None
    title: Optional[str] = None
    channel_id: Optional[str] = None
    thread_ts: Optional[str] = None
    completed: bool = False


class SlackError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _check_blocks(blocks: Any) -> None:
    """The Block Kit rules the bot's messages must follow (a subset Slack enforces)."""
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if not isinstance(blocks, list) or len(blocks) > 50:
        raise SlackError("invalid_blocks")
    for block in blocks:
        kind = block.get("type")
        if kind == "section":
            text = block.get("text") or {}
            if text.get("type") not in ("mrkdwn", "plain_text") or not text.get("text"):
                raise SlackError("invalid_blocks")
            if len(text["text"]) > 3000:
                raise SlackError("invalid_blocks")
        elif kind == "actions":
            elements = block.get("elements") or []
            ids = [e.get("action_id") for e in elements if e.get("action_id")]
            if not elements or len(elements) > 25 or len(ids) != len(set(ids)):
                raise SlackError("invalid_blocks")
            for element in elements:
                text = element.get("text") or {}
                if element.get("type") != "button" or text.get("type") != "plain_text":
                    raise SlackError("invalid_blocks")
                if not 0 < len(text.get("text", "")) <= 75:
                    raise SlackError("invalid_blocks")
                if len(element.get("value", "")) > 2000:
                    raise SlackError("invalid_blocks")
        elif kind == "image":
            if not block.get("image_url") or not block.get("alt_text"):
                raise SlackError("invalid_blocks")
        elif kind == "context":
            elements = block.get("elements") or []
            if not 0 < len(elements) <= 10:
                raise SlackError("invalid_blocks")
            for element in elements:
                if element.get("type") not in ("mrkdwn", "plain_text") or not element.get("text"):
                    raise SlackError("invalid_blocks")
        else:
            raise SlackError("invalid_blocks")


class FakeSlack:
    """The Slack Web API on 127.0.0.1, recording calls; use as a context manager."""

    def __init__(
        self,
        token: str,
        team_id: str = TEAM_ID,
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
    ) -> None:
        self.token = token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.calls: List[Call] = []
        self.uploads: Dict[str, Upload] = {}
        self.messages: Dict[Tuple[str, str], Dict[str, Any]] = {}  # (channel, ts) -> message
        self._rate_limits: Dict[str, List[int]] = {}  # method -> [calls left, retry_after]
        self._lock = threading.Condition()
        self._ts = itertools.count(1)
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self.app_token: Optional[str] = None
        self.socket_mode: Optional[FakeSocketMode] = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "FakeSlack":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def enable_socket_mode(self, app_token: str, **options: Any) -> FakeSocketMode:
        """Accept `app_token` for apps.connections.open and start the Socket Mode endpoint."""
        if self.socket_mode is None:
            self.socket_mode = FakeSocketMode(**options).start()
        self.app_token = app_token
        return self.socket_mode

    def stop(self) -> None:
        if self.socket_mode is not None:
            self.socket_mode.stop()
            self.socket_mode = None
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeSlack":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "FakeSlack is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        """The Web API base URL (what SLACK_API_URL points at)."""
        return self.base_url + "/api/"

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with HTTP 429 and Retry-After."""
        with self._lock:
            self._rate_limits[method] = [times, retry_after]

    # -- queries for tests -------------------------------------------------------------------
    def calls_to(self, method: str, **match: Any) -> List[Call]:
        with self._lock:
            return [
                c
                for c in self.calls
                if c.method == method and all(c.args.get(k) == v for k, v in match.items())
            ]

    def posted(self, channel: Optional[str] = None, **match: Any) -> List[Dict[str, Any]]:
        """Arguments of successful chat.postMessage calls (to `channel`), in order."""
        if channel is not None:
            match["channel"] = channel
        return [c.args for c in self.calls_to("chat.postMessage", **match) if c.response.get("ok")]

    def files(self, channel: Optional[str] = None, thread_ts: Optional[str] = None) -> List[Upload]:
        """Completed uploads shared into `channel` (and `thread_ts`)."""
        with self._lock:
            return [
                u
                for u in self.uploads.values()
                if u.completed
                and (channel is None or u.channel_id == channel)
                and (thread_ts is None or u.thread_ts == thread_ts)
            ]

    def wait_for(self, condition: Callable[[], Any], timeout: float = 90.0) -> Any:
        """Wait until `condition()` is truthy (re-checked on every call received)."""
        return wait_on(self._lock, condition, timeout, "Slack calls")

    # -- HTTP --------------------------------------------------------------------------------
    def _reply(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        kind: str,
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        if url.path.startswith("/upload/v1/"):
            status, text = self._receive_upload(url.path.rsplit("/", 1)[-1], raw)
            self._reply(handler, status, text.encode(), "text/plain")
            return
        if not url.path.startswith("/api/"):
            self._reply(handler, 404, b"not found", "text/plain")
            return
        method = url.path[len("/api/") :]
        kind = (handler.headers.get("Content-Type") or "").split(";")[0].strip()
        args: Dict[str, Any] = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if kind == "application/json" and raw:
                args.update(json.loads(raw))
            elif kind == "application/x-www-form-urlencoded" and raw:
                args.update({k: v[-1] for k, v in parse_qs(raw.decode()).items()})
        except ValueError:
            self._reply(handler, 200, b'{"ok": false, "error": "invalid_json"}', "application/json")
            return
        auth = handler.headers.get("Authorization") or ""
        in_header = auth.startswith("Bearer ")
        token = auth[len("Bearer ") :] if in_header else args.pop("token", None)
        call = Call(method, args, token, kind)
        with self._lock:
            limit = self._rate_limits.get(method)
            if limit and limit[0] > 0:
                limit[0] -= 1
                call.status, call.response = 429, {"ok": False, "error": "ratelimited"}
                self.calls.append(call)
                self._lock.notify_all()
        if call.status == 429:
            body = json.dumps(call.response).encode()
            self._reply(handler, 429, body, "application/json", {"Retry-After": str(limit[1])})
            return
        try:
            self._check_token(method, token, in_header)
            handler_method = getattr(self, "api_" + method.replace(".", "_"), None)
            if handler_method is None:
                raise SlackError("unknown_method")
            with self._lock:
                call.response = {"ok": True, **handler_method(args)}
        except SlackError as exc:
            call.response = {"ok": False, "error": exc.error}
        with self._lock:
            self.calls.append(call)
            self._lock.notify_all()
        self._reply(handler, 200, json.dumps(call.response).encode(), "application/json")

    def _check_token(self, method: str, token: Optional[str], in_header: bool) -> None:
        """Bot methods take the bot token; apps.connections.open the app token, in a header."""
        if not token:
            raise SlackError("not_authed")
        wanted, other = self.token, self.app_token
        if method == "apps.connections.open":
            if not in_header:
                raise SlackError("not_authed")
            wanted, other = self.app_token, self.token
        if token == other:
            raise SlackError("not_allowed_token_type")
        if token != wanted:
            raise SlackError("invalid_auth")

    # -- Web API methods (called with the lock held) -----------------------------------------
    def _new_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def api_auth_test(self, args: Dict[str, Any]) -> Dict[str, Any]:
        return {
            "url": "https://segments.slack.test/",
            "team": "Segment Insights Test",
            "user": "segment-insights",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def api_apps_connections_open(self, args: Dict[str, Any]) -> Dict[str, Any]:
        assert self.socket_mode is not None  # the app token exists only with Socket Mode on
        return {"url": self.socket_mode.issue_url()}

    def api_chat_postMessage(self, args: Dict[str, Any]) -> Dict[str, Any]:
        channel = args.get("channel")
        if not channel:
            raise SlackError("channel_not_found")
        text, blocks = args.get("text"), args.get("blocks")
        if not text and not blocks and not args.get("attachments"):
            raise SlackError("no_text")
        if text and len(text) > 40000:
            raise SlackError("msg_too_long")
        if blocks:
            _check_blocks(blocks)
        ts = self._new_ts()
        message = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": APP_ID,
            "text": text or "",
            "ts": ts,
        }
        if blocks:
            message["blocks"] = json.loads(blocks) if isinstance(blocks, str) else blocks
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        self.messages[(channel, ts)] = message
        return {"channel": channel, "ts": ts, "message": message}

    def api_chat_update(self, args: Dict[str, Any]) -> Dict[str, Any]:
        key = (args.get("channel"), args.get("ts"))
        if key not in self.messages:
            raise SlackError("message_not_found")
        if args.get("blocks"):
            _check_blocks(args["blocks"])
            self.messages[key]["blocks"] = args["blocks"]
        self.messages[key]["text"] = args.get("text", "")
        return {"channel": key[0], "ts": key[1], "text": args.get("text", "")}

    def api_files_getUploadURLExternal(self, args: Dict[str, Any]) -> Dict[str, Any]:
        filename, length = args.get("filename"), args.get("length")
        if not filename:
            raise SlackError("invalid_arguments")
        try:
            size = int(length)
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments") from None
        if size <= 0:
            raise SlackError("invalid_arguments")
        file_id = "F" + uuid.uuid4().hex[:10].upper()
        self.uploads[file_id] = Upload(file_id, filename, size, args.get("alt_txt"))
        return {"upload_url": f"{self.base_url}/upload/v1/{file_id}", "file_id": file_id}

    def _receive_upload(self, file_id: str, data: bytes) -> Tuple[int, str]:
        with self._lock:
            upload = self.uploads.get(file_id)
            if upload is None or upload.data is not None:
                return 404, "unknown upload"
            if len(data) != upload.length:
                return 400, f"expected {upload.length} bytes, got {len(data)}"
            upload.data = data
            self._lock.notify_all()
        return 200, f"OK - {len(data)}"

    def api_files_completeUploadExternal(self, args: Dict[str, Any]) -> Dict[str, Any]:
        try:
            files = args["files"]
            files = json.loads(files) if isinstance(files, str) else files
        except (KeyError, ValueError):
            raise SlackError("invalid_arguments") from None
        done = []
        for item in files:
            upload = self.uploads.get(item.get("id"))
            if upload is None or upload.data is None or upload.completed:
                raise SlackError("file_not_found")
            done.append((upload, item))
        for upload, item in done:
            upload.title = item.get("title") or upload.filename
            upload.channel_id = args.get("channel_id")
            upload.thread_ts = args.get("thread_ts")
            upload.completed = True
        return {
            "files": [
                {"id": u.file_id, "name": u.filename, "title": u.title, "size": u.length}
                for u, _ in done
            ]
        }
