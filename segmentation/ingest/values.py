"""Vectorised conversion of CSV text to typed column values, naming every bad value."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

import numpy as np
import pandas as pd

from segmentation.errors import ConfigError
from segmentation.ingest.columns import ColumnSpec

# Behaviour logs are from the web era; anything else is a wrong unit or a wrong format.
EARLIEST = pd.Timestamp("1990-01-01")
LATEST = pd.Timestamp("2100-01-01")
EPOCH_UNITS = {"epoch_s": "s", "epoch_ms": "ms"}
AUTO = "iso"
TIMESTAMP_FORMAT_HELP = (
    "'iso' (default: ISO 8601, or any date text pandas can read, parsed value by value and "
    "month first when ambiguous; naive times are UTC), 'epoch_s', 'epoch_ms', or a strftime "
    "pattern such as '%d/%m/%Y %H:%M' (fast and unambiguous)"
)


@dataclass
class Issue:
    """Rows where a column's value is wrong (`mask`), and how to describe one such value."""

    mask: np.ndarray
    describe: Callable[[Any], str]


class TimestampFormat:
    """The --timestamp-format option: how timestamp text becomes naive UTC datetimes."""

    def __init__(self, option: Optional[str] = None) -> None:
        name = (option or AUTO).strip()
        if name.lower() in ("iso", "auto", "text"):
            name = AUTO
        elif name.lower() in EPOCH_UNITS:
            name = name.lower()
        elif "%" not in name:
            raise ConfigError(f"unknown timestamp format '{option}'; use {TIMESTAMP_FORMAT_HELP}")
        self.name = name

    @property
    def is_epoch(self) -> bool:
        return self.name in EPOCH_UNITS

    def parse(self, values: pd.Series) -> pd.Series:
        """datetime64 values floored to the second; NaT where missing or not understood."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.is_epoch:
                numbers = pd.to_numeric(values, errors="coerce")
                parsed = pd.to_datetime(numbers, unit=EPOCH_UNITS[self.name], errors="coerce")
            elif self.name == AUTO:
                # ISO 8601 is parsed fast; anything else value by value (month before day
                # when ambiguous, the same in every block). A strftime pattern is faster.
                parsed = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
                retry = parsed.isna() & values.notna()
                if retry.any():
                    mixed = pd.to_datetime(values[retry], errors="coerce", utc=True, format="mixed")
                    parsed = parsed.where(~retry, mixed)
            else:
                parsed = pd.to_datetime(values, errors="coerce", utc=True, format=self.name)
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_convert(None)
        return parsed.dt.floor("s")

    def explain_unreadable(self, value: Any) -> str:
        text = str(value)
        if self.is_epoch:
            return f"'{text}' is not a number ({self.name} timestamps count from 1970-01-01 UTC)"
        if self.name != AUTO:
            return f"'{text}' does not match --timestamp-format '{self.name}'"
        digits = text.strip().lstrip("-")
        if digits.isdigit() and len(digits) in (10, 13):
            unit = "epoch_s" if len(digits) == 10 else "epoch_ms"
            return f"'{text}' is not a date; it looks like {unit}: use --timestamp-format {unit}"
        return (
            f"'{text}' is not a timestamp (expected e.g. 2024-05-01T13:45:00Z, or say the "
            "layout with --timestamp-format '%d/%m/%Y %H:%M')"
        )

    def explain_out_of_range(self, value: Any, parsed: pd.Timestamp) -> str:
        message = (
            f"'{value}' reads as {parsed} ({self.name}), outside "
            f"{EARLIEST.year}-{LATEST.year - 1}"
        )
        if self.is_epoch:
            other = "epoch_s" if self.name == "epoch_ms" else "epoch_ms"
            message += f"; is it {other}? (--timestamp-format {other})"
        return message


def convert_column(
    spec: ColumnSpec,
    values: pd.Series,
    timestamps: TimestampFormat,
    longest_record: Optional[int] = None,
) -> Tuple[pd.Series, List[Issue]]:
    """`values` converted for `spec`'s table column, and the issues found.

    `longest_record` (bytes) lets text length checks be skipped when no value can be too long.
    """
    missing = values.isna()
    issues: List[Issue] = []
    if spec.required and missing.any():
        issues.append(Issue(missing.to_numpy(), lambda _value: "missing value (required)"))
    if spec.kind in ("timestamp", "date"):
        converted, more = _timestamps(values, missing, timestamps)
        if spec.kind == "date":
            converted = converted.dt.normalize()
    elif spec.kind == "duration":
        converted, more = _durations(values, missing)
    else:
        converted, more = _texts(values, spec.max_length, longest_record)
    return converted, issues + more


def _timestamps(
    values: pd.Series, missing: pd.Series, timestamps: TimestampFormat
) -> Tuple[pd.Series, List[Issue]]:
    parsed = timestamps.parse(values)
    unreadable = parsed.isna() & ~missing
    out_of_range = (parsed < EARLIEST) | (parsed >= LATEST)
    issues = []
    if unreadable.any():
        issues.append(Issue(unreadable.to_numpy(), timestamps.explain_unreadable))
    if out_of_range.any():
        readings = parsed[out_of_range]
        lookup = dict(zip(values[out_of_range].astype(str), readings))
        issues.append(
            Issue(
                out_of_range.to_numpy(),
                lambda value: timestamps.explain_out_of_range(value, lookup.get(str(value))),
            )
        )
    return parsed, issues


def _durations(values: pd.Series, missing: pd.Series) -> Tuple[pd.Series, List[Issue]]:
    numbers = values if pd.api.types.is_float_dtype(values) else None
    if numbers is None:
        numbers = pd.to_numeric(values, errors="coerce").astype(float)
    issues = []
    not_numbers = numbers.isna() & ~missing
    if not_numbers.any():
        issues.append(
            Issue(not_numbers.to_numpy(), lambda value: f"'{value}' is not a number of seconds")
        )
    negative = numbers < 0
    if negative.any():
        issues.append(
            Issue(negative.to_numpy(), lambda value: f"negative duration {value}: must be >= 0")
        )
    infinite = np.isinf(numbers.to_numpy())
    if infinite.any():
        issues.append(Issue(infinite, lambda value: f"'{value}' is not a finite number"))
    return numbers, issues


def _texts(
    values: pd.Series, max_length: Optional[int], longest_record: Optional[int]
) -> Tuple[pd.Series, List[Issue]]:
    if max_length is None or (longest_record is not None and longest_record <= max_length):
        return values, []  # a field is never longer (in characters) than its record (in bytes)
    if _longest(values) <= max_length:
        return values, []
    too_long = (values.str.len() > max_length).to_numpy()

    def describe(value: str) -> str:
        return f"value is {len(value):,} characters long; at most {max_length} fit"

    return values, [Issue(too_long, describe)]


def _longest(values: pd.Series) -> int:
    """Length of the longest text (a C-speed loop; much faster than `str.len()`)."""
    try:
        return max(map(len, values.to_numpy()), default=0)
    except TypeError:  # missing values (NaN) among the texts
        return max(map(len, values.dropna().to_numpy()), default=0)
