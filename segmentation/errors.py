"""Errors that the CLI, the query layer and the bot turn into clear messages."""

from __future__ import annotations

from typing import Optional

# Exit codes of `python -m segmentation`, documented in the README.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_DATABASE = 3
EXIT_NO_DATA = 4


class SegmentationError(Exception):
    """Base class: an expected failure with a message meant for a person."""

    exit_code = EXIT_FAILURE


class InputError(SegmentationError):
    """Bad input data: names the file, line and column where possible."""

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        message: str,
        path: Optional[str] = None,
        line: Optional[int] = None,
        column: Optional[str] = None,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        super().__init__(self.location() + message)

    def location(self) -> str:
        """`file:line: column 'x': ` prefix, leaving out what is unknown."""
        where = ""
        if self.path:
            where = str(self.path)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        if self.column:
            where += f"column '{self.column}': "
        return where


class InputErrors(InputError):
    """Several input errors found in one pass; the message lists the first ones."""

    def __init__(self, errors: list, path: Optional[str] = None, limit: int = 20) -> None:
        self.errors = errors
        shown = [str(error) for error in errors[:limit]]
        more = len(errors) - len(shown)
        if more > 0:
            shown.append(f"... and {more:,} more")
        summary = f"{len(errors):,} problem(s) found, nothing was loaded:\n  " + "\n  ".join(shown)
        super().__init__(summary, path=None)
        self.path = path


class NoDataError(SegmentationError):
    """There is nothing to work on yet (no events, no run, unknown user...)."""

    exit_code = EXIT_NO_DATA


class DatabaseUnavailable(SegmentationError):
    """The database cannot be reached; the message says which one (without password)."""

    exit_code = EXIT_DATABASE


class ConfigError(SegmentationError):
    """A setting or option is wrong."""

    exit_code = EXIT_BAD_INPUT
