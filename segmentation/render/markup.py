"""A Reply in each channel's own markup: Slack mrkdwn, HTML, plain text, ANSI."""

from __future__ import annotations

import html
from typing import Callable, List

from segmentation import formatting as fmt
from segmentation.render.document import Chart, Paragraph, Reply, Span, Table

ANSI_BOLD, ANSI_DIM, ANSI_RESET = "\033[1m", "\033[2m", "\033[0m"


def _join(spans: List[Span], bold: Callable[[str], str], italic: Callable[[str], str]) -> str:
    out = []
    for text, style in spans:
        out.append(bold(text) if style == "b" else italic(text) if style == "i" else text)
    return "".join(out)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(reply: Reply) -> str:
    """Slack-style: *bold*, _italic_, tables in ``` blocks (also the REST channel's text)."""
    lines = []
    for block in reply.blocks:
        if isinstance(block, Paragraph):
            text = _join(block.spans, lambda t: f"*{t}*", lambda t: f"_{t}_")
            lines.append(f"_{text}_" if block.kind == "source" else text)
        elif isinstance(block, Table):
            lines.append("```\n" + fmt.table(block.headers, block.rows) + "\n```")
    return "\n".join(line for line in lines if line)


def plain(reply: Reply, ansi: bool = False) -> str:
    """For terminals: bold and dim with ANSI codes when `ansi`, else no marks at all."""
    bold = (lambda t: f"{ANSI_BOLD}{t}{ANSI_RESET}") if ansi else (lambda t: t)
    dim = (lambda t: f"{ANSI_DIM}{t}{ANSI_RESET}") if ansi else (lambda t: t)
    lines = []
    for block in reply.blocks:
        if isinstance(block, Paragraph):
            text = _join(block.spans, bold, lambda t: t)
            lines.append(dim(text) if block.kind == "source" else text)
        elif isinstance(block, Table):
            lines.append(fmt.table(block.headers, block.rows))
        elif isinstance(block, Chart):
            lines.append(f"Chart ({block.title}): {block.path}")
    return "\n".join(line for line in lines if line)


def to_html(reply: Reply) -> str:
    """Escaped HTML (the structure the web chat builds with DOM calls, for other clients)."""
    e = html.escape
    parts = []
    for block in reply.blocks:
        if isinstance(block, Paragraph):
            text = _join(
                [(e(t), s) for t, s in block.spans],
                lambda t: f"<b>{t}</b>",
                lambda t: f"<i>{t}</i>",
            )
            parts.append(f'<p class="{e(block.kind)}">{text}</p>')
        elif isinstance(block, Table):
            head = "".join(f"<th>{e(h)}</th>" for h in block.headers)
            body = "".join(
                "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in block.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(block, Chart) and block.url:
            parts.append(f'<img src="{e(block.url)}" alt="{e(block.title)}">')
    return "".join(parts)


def slack_blocks(reply: Reply) -> List[dict]:
    """Block Kit: a mrkdwn section per paragraph, tables as code, the run as context."""
    blocks = []
    for block in reply.blocks:
        if isinstance(block, Paragraph):
            text = _slack_escape(_join(block.spans, lambda t: f"*{t}*", lambda t: f"_{t}_"))
            if block.kind == "source":
                blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})
            elif text.strip():
                blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
        elif isinstance(block, Table):
            table = _slack_escape(fmt.table(block.headers, block.rows))
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": f"```\n{table[:2990]}\n```"}}
            )
    return blocks
