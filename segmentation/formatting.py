"""Numbers for people: 1,234 users, 12.3%, 4.5 min. Shared by the CLI and the chatbot."""

from __future__ import annotations

from typing import List, Sequence


def count(value: float) -> str:
    """1234 -> "1,234"."""
    return f"{int(round(value)):,}"


def percent(share: float, digits: int = 1) -> str:
    """0.1234 -> "12.3%"."""
    return f"{share * 100:.{digits}f}%"


def number(value: float) -> str:
    """A measured value with sensible precision: 1,234 / 56.7 / 0.42."""
    magnitude = abs(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def quantity(value: float, unit: str) -> str:
    """A value with its unit; seconds become minutes above two minutes."""
    if unit == "s":
        if abs(value) >= 120:
            return f"{number(value / 60)} min"
        return f"{number(value)} s"
    if unit == "days":
        return f"{number(value)} days"
    return number(value)


def ratio_phrase(value: float, reference: float) -> str:
    """ "2.3x", "0.4x" or "same" for value vs reference."""
    if reference == 0:
        return "n/a" if value == 0 else "new"
    ratio = value / reference
    if abs(ratio - 1) < 0.05:
        return "about the same"
    return f"{ratio:.1f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: the first column left-aligned, the figures right-aligned."""
    cells: List[List[str]] = [list(headers)] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(cells):
        parts = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:])
        ]
        lines.append("  ".join(parts).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)
