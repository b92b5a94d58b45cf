"""A reply as structured blocks, before any channel's markup.

Text is a list of spans (plain, bold or italic); tables keep their cells; the source line
and caveats are their own blocks; a chart carries its own title and file. `markup` turns a
Reply into Slack mrkdwn, HTML, plain text or ANSI; channels that understand the structure
(the web chat, Slack blocks) get it as JSON next to the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

Span = Tuple[str, str]  # (text, style): style "", "b" (bold) or "i" (italic)


@dataclass
class Paragraph:
    spans: List[Span]
    kind: str = "text"  # "text", "source" (which run), "note" (caveats, interpretation)


@dataclass
class Table:
    headers: List[str]
    rows: List[List[str]]


@dataclass
class Chart:
    title: str
    path: str  # the PNG file on disk
    url: str = ""  # where a channel can fetch it


Block = Union[Paragraph, Table, Chart]


@dataclass
class Reply:
    """One answer: blocks in order, and buttons that ask follow-up questions."""

    blocks: List[Block] = field(default_factory=list)
    buttons: List[Dict[str, str]] = field(default_factory=list)  # {"title", "payload"}

    def add(self, *blocks: Block) -> "Reply":
        self.blocks.extend(blocks)
        return self

    def text(self, markup: str, kind: str = "text") -> "Reply":
        """Add a paragraph written with *bold* and _italic_ marks."""
        return self.add(Paragraph(spans(markup), kind))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> "Reply":
        return self.add(Table(list(headers), [[str(c) for c in row] for row in rows]))

    @property
    def charts(self) -> List[Chart]:
        return [b for b in self.blocks if isinstance(b, Chart)]

    def to_json(self) -> Dict[str, Any]:
        blocks = []
        for block in self.blocks:
            if isinstance(block, Paragraph):
                blocks.append({"type": block.kind, "spans": [list(s) for s in block.spans]})
            elif isinstance(block, Table):
                blocks.append({"type": "table", "headers": block.headers, "rows": block.rows})
            else:
                blocks.append({"type": "chart", "title": block.title, "url": block.url,
                               "file": block.path.rsplit("/", 1)[-1]})  # fmt: skip
        return {"blocks": blocks}

    @classmethod
    def from_json(cls, data: Dict[str, Any], charts_dir: Optional[str] = None) -> "Reply":
        reply = cls()
        for block in data.get("blocks", []):
            kind = block.get("type")
            if kind == "table":
                reply.table(block.get("headers", []), block.get("rows", []))
            elif kind == "chart":
                path = (
                    f"{charts_dir}/{block.get('file', '')}" if charts_dir else block.get("file", "")
                )
                reply.add(Chart(block.get("title", "Chart"), path, block.get("url", "")))
            else:
                reply.add(Paragraph([tuple(s) for s in block.get("spans", [])], kind or "text"))
        return reply


_MARKS = re.compile(r"\*([^*\n]+)\*|(?<![A-Za-z0-9])_([^_\n]+)_(?![A-Za-z0-9])")


def spans(markup: str) -> List[Span]:
    """ "*41* users in _Germany_" -> spans with bold and italic parts."""
    result: List[Span] = []
    last = 0
    for match in _MARKS.finditer(markup):
        if match.start() > last:
            result.append((markup[last : match.start()], ""))
        if match.group(1) is not None:
            result.append((match.group(1), "b"))
        else:
            result.append((match.group(2), "i"))
        last = match.end()
    if last < len(markup):
        result.append((markup[last:], ""))
    return result
