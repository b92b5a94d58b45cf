"""Collect every problem found in one pass over a file, then fail with all of them at once."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from segmentation.errors import InputError, InputErrors

MAX_PROBLEMS = 1000


class Problems:
    """Input problems of one file, kept in line order, up to `limit`."""

    def __init__(self, path: Path, limit: int = MAX_PROBLEMS) -> None:
        self.path = str(path)
        self.limit = limit
        self.errors: List[InputError] = []

    def __bool__(self) -> bool:
        return bool(self.errors)

    def __len__(self) -> int:
        return len(self.errors)

    @property
    def full(self) -> bool:
        return len(self.errors) >= self.limit

    def add(self, message: str, line: Optional[int] = None, column: Optional[str] = None) -> None:
        """Record one problem (ignored once the limit is reached)."""
        if not self.full:
            self.errors.append(InputError(message, path=self.path, line=line, column=column))

    def add_error(self, error: InputError) -> None:
        if not self.full:
            self.errors.append(error)

    def raise_if_any(self) -> None:
        """Raise InputErrors listing every problem, in line order, if there is any."""
        if not self.errors:
            return
        ordered = sorted(self.errors, key=lambda error: (error.line or 0, error.column or ""))
        if self.full:
            note = f"stopped after the first {self.limit:,} problems; there may be more"
            ordered.insert(0, InputError(note, path=self.path))
        raise InputErrors(ordered, path=self.path)
