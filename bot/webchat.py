"""The web chat: a page served by the Rasa server itself, talking to the same assistant.

`WebChatInput` is Rasa's REST channel under the name "webchat" (the actions see the input
channel "webchat", so they attach charts). Routes under /webhooks/webchat/:

    GET  /                 the page (bot/static/index.html)
    GET  /static/<file>    its stylesheet and script
    POST /webhook          {"sender": id, "message": text} -> the assistant's replies (JSON list)
                           (the REST channel's input limits, bot/rest.py; sender 8-64 characters)
    GET  /summary          the current run and its segment sizes, or why there are none (503
                           when the database does not answer within SUMMARY_DEADLINE seconds)
    GET  /charts/<n>.png   chart images from the charts folder (SI_CHARTS_DIR)
    GET  /exports/<t>.csv  CSV exports made in chat, by their token name, until they expire
"""

from __future__ import annotations

import asyncio
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Text, Tuple

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.rest import SECURITY_HEADERS, Refused, answer, error, parse_message
from segmentation.charts import saved_chart
from segmentation.export_files import saved_export

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = {
    "webchat.css": "text/css; charset=utf-8",
    "webchat.js": "text/javascript; charset=utf-8",
}
SENDER = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
SUMMARY_DEADLINE = 5.0
_summary_threads = ThreadPoolExecutor(2, thread_name_prefix="si-summary")
UNAVAILABLE = {
    "ok": False,
    "error": "database_unavailable",
    "message": "The segment database can't be reached right now; try again shortly.",
}
PAGE_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-cache",
}

_queries = None


def queries():
    """The query layer for DATABASE_URL, created on first use."""
    global _queries
    if _queries is None:
        from segmentation.queries import SegmentQueries

        _queries = SegmentQueries()
    return _queries


def run_summary(source=None) -> Tuple[int, Dict[str, Any]]:
    """(HTTP status, body) for /summary: the current run and its segments, or why not."""
    from segmentation.errors import DatabaseUnavailable, NoDataError

    try:
        overview = (source or queries()).overview()
    except NoDataError as exc:
        return HTTPStatus.OK, {"ok": False, "error": "no_run", "message": str(exc)}
    except DatabaseUnavailable:
        logger.exception("segment database unavailable")
        return HTTPStatus.SERVICE_UNAVAILABLE, UNAVAILABLE
    run = overview.run
    created: datetime = run.created_at
    return HTTPStatus.OK, {
        "ok": True,
        "run": {
            "id": run.id,
            "label": run.label,
            "created_at": created.isoformat(),
            "date": f"{created:%d %b %Y}",
            "time": f"{created:%H:%M} UTC",
        },
        "total_users": overview.total_users,
        "segments": [{"name": s.name, "size": s.size, "share": s.share} for s in overview.segments],
    }


class WebChatInput(RestInput):
    """Rasa's REST channel named "webchat", plus the page, a summary and the chart files."""

    @classmethod
    def name(cls) -> Text:
        return "webchat"

    def _extract_input_channel(self, req: Request) -> Text:
        return self.name()  # the page can't pretend to be another channel

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webchat = Blueprint("webchat", __name__)

        @webchat.route("/", methods=["GET"])
        async def page(request: Request) -> HTTPResponse:
            if not request.path.endswith("/"):  # relative links need the slash
                return response.redirect(request.path + "/", status=HTTPStatus.MOVED_PERMANENTLY)
            return await response.file(
                STATIC_DIR / "index.html",
                mime_type="text/html; charset=utf-8",
                headers=PAGE_HEADERS,
            )

        @webchat.route("/static/<name:str>", methods=["GET"])
        async def static(request: Request, name: str) -> HTTPResponse:
            if name not in STATIC_FILES:
                return error(HTTPStatus.NOT_FOUND, "not found")
            return await response.file(
                STATIC_DIR / name, mime_type=STATIC_FILES[name], headers=PAGE_HEADERS
            )

        @webchat.route("/summary", methods=["GET"])
        async def summary(request: Request) -> HTTPResponse:
            loop = asyncio.get_running_loop()
            try:
                status, body = await asyncio.wait_for(
                    loop.run_in_executor(_summary_threads, run_summary), SUMMARY_DEADLINE
                )
            except asyncio.TimeoutError:
                logger.error("summary: the segment database did not answer in time")
                status, body = HTTPStatus.SERVICE_UNAVAILABLE, UNAVAILABLE
            except Exception:  # noqa: BLE001 - the page shows a message instead of segments
                logger.exception("summary failed")
                status, body = HTTPStatus.INTERNAL_SERVER_ERROR, {
                    "ok": False,
                    "error": "internal",
                    "message": "The summary could not be loaded.",
                }
            return response.json(
                body, status=status, headers={**SECURITY_HEADERS, "Cache-Control": "no-store"}
            )

        @webchat.route("/charts/<name:str>", methods=["GET"])
        async def chart(request: Request, name: str) -> HTTPResponse:
            path = saved_chart(name)
            if path is None:
                return error(HTTPStatus.NOT_FOUND, "no such chart")
            return await response.file(
                path,
                mime_type="image/png",
                headers={**SECURITY_HEADERS, "Cache-Control": "private, max-age=300"},
            )

        @webchat.route("/exports/<name:str>", methods=["GET"])
        async def export(request: Request, name: str) -> HTTPResponse:
            path = saved_export(name)
            if path is None:
                return error(HTTPStatus.NOT_FOUND, "no such export, or it has expired")
            return await response.file(
                path,
                mime_type="text/csv; charset=utf-8",
                headers={
                    **SECURITY_HEADERS,
                    "Cache-Control": "private, no-store",
                    "Content-Disposition": 'attachment; filename="segment-export.csv"',
                },
            )

        @webchat.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                sender, text, _ = parse_message(request, SENDER, "8-64 letters, digits, - or _")
            except Refused as refused:
                return error(refused.status, refused.message)
            return await answer(on_new_message, sender, text, self.name())

        return webchat
