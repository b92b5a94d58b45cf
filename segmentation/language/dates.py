"""Date expressions in questions -> date ranges [start, end), relative to the data's last day.

"this year", "last month", "in 2025", "in March" (the latest March up to the reference day),
"March 2026", "Q1 2026", "since June", "before 2025", "after May 2026", "between March and
May 2026", "from January to April", "in the last 30 days" / "past 2 weeks" / "last 6 months",
"2026-03-01". The reference day is the data's last event (or its last signup), never today's
date, so the same question on the same data always means the same days.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import List, Optional, Sequence, Tuple

from segmentation.language.text import Token

MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
MONTHS["sept"] = 9
UNITS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "month": 30, "months": 30, "year": 365,
         "years": 365}  # fmt: skip
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "fourteen": 14, "thirty": 30,
                "sixty": 60, "ninety": 90, "a": 1}  # fmt: skip


@dataclass(frozen=True)
class DateRange:
    start: Optional[date]
    end: Optional[date]  # exclusive
    said: str

    def describe(self) -> str:
        """ "in 2026", "from 1 Mar 2026 to 31 May 2026", "since 1 Jun 2026"..."""
        if self.start and self.end:
            last = self.end - timedelta(days=1)
            if last == self.start:
                return f"on {_day(self.start)}"
            if (
                self.start.month == 1
                and self.start.day == 1
                and self.end == date(self.start.year + 1, 1, 1)
            ):
                return f"in {self.start.year}"
            if self.start.day == 1 and last == _month_end(self.start):
                return f"in {self.start:%B %Y}"
            return f"between {_day(self.start)} and {_day(last)}"
        if self.start:
            return f"on or after {_day(self.start)}"
        if self.end:
            return f"before {_day(self.end)}"
        return "at any time"


def _day(value: date) -> str:
    return f"{value.day} {value:%b %Y}"


def _month_end(value: date) -> date:
    return date(value.year, value.month, calendar.monthrange(value.year, value.month)[1])


def _month_range(year: int, month: int) -> Tuple[date, date]:
    end = date(year + (month == 12), month % 12 + 1, 1)
    return date(year, month, 1), end


def _year(token: Token) -> Optional[int]:
    if token.text.isdigit() and len(token.text) == 4 and 1970 <= int(token.text) <= 2100:
        return int(token.text)
    return None


def _latest_month(month: int, reference: date) -> int:
    """The year of the latest `month` up to the reference day."""
    return reference.year if month <= reference.month else reference.year - 1


class _Reader:
    """A cursor over tokens for the small date grammar."""

    def __init__(self, tokens: Sequence[Token], reference: date) -> None:
        self.tokens = tokens
        self.ref = reference

    def word(self, i: int) -> str:
        return self.tokens[i].lower if 0 <= i < len(self.tokens) else ""

    def point(self, i: int) -> Optional[Tuple[date, date, int]]:
        """A single period at token i: (start, end, tokens used)."""
        w = self.word(i)
        if len(w) == 10 and w[4] == "-" and w[:4].isdigit():
            try:
                day = date.fromisoformat(w)
            except ValueError:
                return None
            return day, day + timedelta(days=1), 1
        if w in MONTHS:
            year = _year(self.tokens[i + 1]) if i + 1 < len(self.tokens) else None
            if year:
                return (*_month_range(year, MONTHS[w]), 2)
            return (*_month_range(_latest_month(MONTHS[w], self.ref), MONTHS[w]), 1)
        if w in ("q1", "q2", "q3", "q4"):
            year = _year(self.tokens[i + 1]) if i + 1 < len(self.tokens) else None
            start = date(year or self.ref.year, (int(w[1]) - 1) * 3 + 1, 1)
            return start, _shift_months(start, 3), 2 if year else 1
        year = _year(self.tokens[i]) if 0 <= i < len(self.tokens) else None
        if year:
            return date(year, 1, 1), date(year + 1, 1, 1), 1
        if w in ("this", "last", "previous", "current") and self.word(i + 1) in (
            "year",
            "month",
            "week",
        ):
            return self._calendar(w, self.word(i + 1)) + (2,)
        if w in ("today", "yesterday"):
            day = self.ref - timedelta(days=1 if w == "yesterday" else 0)
            return day, day + timedelta(days=1), 1
        return None

    def _calendar(self, which: str, unit: str) -> Tuple[date, date]:
        ref = self.ref
        if unit == "year":
            year = ref.year - (which in ("last", "past", "previous"))
            return date(year, 1, 1), date(year + 1, 1, 1)
        if unit == "month":
            month, year = ref.month, ref.year
            if which in ("last", "past", "previous"):
                month, year = (12, year - 1) if month == 1 else (month - 1, year)
            return _month_range(year, month)
        monday = ref - timedelta(days=ref.weekday())
        if which in ("last", "past", "previous"):
            monday -= timedelta(days=7)
        return monday, monday + timedelta(days=7)

    def window(self, i: int) -> Optional[Tuple[date, date, int]]:
        """ "last 30 days", "past two weeks", "last 6 months" ending on the reference day."""
        if self.word(i) not in ("last", "past", "previous", "recent"):
            return None
        amount_word, unit = self.word(i + 1), self.word(i + 2)
        amount = int(amount_word) if amount_word.isdigit() else NUMBER_WORDS.get(amount_word)
        used = 3
        if amount is None and self.word(i) == "past" and amount_word in UNITS:
            amount, unit, used = 1, amount_word, 2  # "the past year": twelve months
        if amount is None or unit not in UNITS or amount > 36500:
            return None
        end = self.ref + timedelta(days=1)
        if unit.startswith("month"):
            start = _shift_months(end, -amount)
        elif unit.startswith("year"):
            start = _shift_months(end, -12 * amount)
        else:
            start = end - timedelta(days=amount * UNITS[unit])
        return start, end, used


def _shift_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def find_dates(tokens: Sequence[Token], reference: date) -> List[Tuple[int, int, DateRange]]:
    """Date expressions in `tokens`: (first token, end token, range), left to right."""
    reader = _Reader(tokens, reference)
    found: List[Tuple[int, int, DateRange]] = []
    i = 0
    while i < len(tokens):
        hit = _expression(reader, i)
        if hit is None:
            i += 1
            continue
        start_index, end_index, start, end = hit
        said = " ".join(t.text for t in tokens[start_index:end_index])
        found.append((start_index, end_index, DateRange(start, end, said)))
        i = end_index
    return found


def _expression(r: _Reader, i: int):
    """One expression starting at token i: (first, end, start date, end date) or None."""
    w = r.word(i)
    if w in ("between", "from"):
        first = r.point(i + 1)
        if first and r.word(i + 1 + first[2]) in ("and", "to", "until", "till", "-"):
            second = r.point(i + 2 + first[2])
            if second:
                start, end = first[0], second[1]
                if r.word(i + 1) in MONTHS and first[2] == 1 and second[2] == 2:
                    start = date(second[0].year, start.month, 1)  # "March to May 2026"
                if start >= end:  # written the other way round
                    start, end = second[0], first[1]
                return i, i + 2 + first[2] + second[2], start, end
    if w in ("since", "after", "from"):
        point = r.point(i + 1)
        if point:
            start = point[0] if w != "after" else point[1]
            return i, i + 1 + point[2], start, None
    if w in ("before", "until", "till", "prior"):
        offset = 2 if w == "prior" and r.word(i + 1) == "to" else 1
        point = r.point(i + offset)
        if point:
            end = point[0] if w in ("before", "prior") else point[1]
            return i, i + offset + point[2], None, end
    window = r.window(i)
    if window:
        lead = 1 if r.word(i - 1) in ("in", "over", "during", "within") else 0
        return i - lead, i + window[2], window[0], window[1]
    point = r.point(i)
    if point:
        lead = 1 if r.word(i - 1) in ("in", "during", "on", "for") else 0
        return i - lead, i + point[2], point[0], point[1]
    return None
