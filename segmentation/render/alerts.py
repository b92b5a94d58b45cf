"""Replies for alerts (segments that moved between two runs) and digests."""

from __future__ import annotations

from typing import Sequence

from segmentation import formatting as fmt
from segmentation.render.document import Reply


def _signed(value: float, digits: int = 1) -> str:
    return f"{'+' if value >= 0 else '−'}{abs(value):.{digits}f}"


def _when(run) -> str:
    return f"run #{run.id} ({run.created_at:%d %b %Y %H:%M} UTC)"


def movement_alert(before, after, moves: Sequence, share_points: float, size_percent: float):
    """What moved, by how much, between which runs (moves: segmentation.alerts.Movement)."""
    reply = Reply().text(
        f"*Segments moved* between {_when(before)} and {_when(after)}: "
        f"{len(moves)} segment(s) crossed the alert threshold."
    )
    for move in moves:
        percent = "new" if move.size_percent is None else f"{_signed(move.size_percent)}%"
        reply.text(
            f"• *{move.segment}*: {fmt.count(move.before)} → {fmt.count(move.after)} users "
            f"({percent}), share {fmt.percent(move.share_before)} → "
            f"{fmt.percent(move.share_after)} ({_signed(move.share_points)} points)."
        )
    reply.text(
        f"Alert when a segment's share moves by at least {share_points:g} points or its size by "
        f"at least {size_percent:g}%.",
        "note",
    )
    return reply.text(f"From {before.label} to {after.label}.", "source")


def digest(parts: Sequence[Reply], title: str) -> Reply:
    """Several answers (sizes, changes, quality) as one message under a title."""
    reply = Reply().text(f"*{title}*")
    for part in parts:
        reply.add(*part.blocks)
    return reply
