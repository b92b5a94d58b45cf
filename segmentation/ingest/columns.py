"""Which file column fills which table column: specs read from the schema, mappings from users."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from sqlalchemy import Table
from sqlalchemy.types import TypeDecorator

from segmentation.errors import ConfigError, InputError
from segmentation.schema import EVENT_TABLES, users

LOADABLE_TABLES: Dict[str, Table] = {**EVENT_TABLES, users.name: users}
# Filled by the loader, never by the file.
_MANAGED_COLUMNS = ("id", "file_id")
# Column kind by the Python type of the column (variants included).
_KINDS = {datetime: "timestamp", date: "date", float: "duration", str: "text"}


@dataclass(frozen=True)
class ColumnSpec:
    """One table column a file can fill."""

    name: str
    kind: str  # "text", "timestamp", "date" or "duration"
    required: bool
    max_length: Optional[int] = None


def column_specs(table: Table) -> List[ColumnSpec]:
    """The columns of `table` that come from a file, with their kind, in table order."""
    specs = []
    for column in table.columns:
        if column.name in _MANAGED_COLUMNS:
            continue
        base = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
        kind = _KINDS.get(base.python_type, "text")
        length = getattr(base, "length", None)
        required = not column.nullable or column.primary_key
        specs.append(ColumnSpec(column.name, kind, required, length))
    return specs


def loadable_table(name: str) -> Table:
    """The table called `name`, or a ConfigError listing the tables files can be loaded into."""
    try:
        return LOADABLE_TABLES[name]
    except KeyError:
        known = ", ".join(LOADABLE_TABLES)
        raise ConfigError(f"unknown table '{name}'; choose one of: {known}") from None


def parse_map_options(items: Sequence[str]) -> Dict[str, str]:
    """`["dest=source", ...]` (the repeatable --map option) as {dest: source}."""
    mapping: Dict[str, str] = {}
    for item in items:
        dest, sep, source = item.partition("=")
        if not sep or not dest.strip() or not source:
            raise ConfigError(f"--map expects TABLE_COLUMN=FILE_COLUMN, got '{item}'")
        mapping[dest.strip()] = source
    return mapping


def read_mapping_file(path: Path) -> Dict[str, str]:
    """A JSON object {table column: file column} from `path`."""
    try:
        mapping = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise InputError(f"cannot read the mapping file: {exc.strerror}", path=str(path)) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", path=str(path), line=exc.lineno) from None
    if not isinstance(mapping, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in mapping.items()
    ):
        raise InputError(
            'expected a JSON object of strings, {"table_column": "file_column", ...}',
            path=str(path),
        )
    return mapping


@dataclass(frozen=True)
class ColumnPlan:
    """How a file's columns fill a table: {table column: file column}, and what is left out."""

    table: Table
    sources: Dict[str, str]
    ignored: List[str]

    @property
    def specs(self) -> List[ColumnSpec]:
        return [spec for spec in column_specs(self.table) if spec.name in self.sources]


def plan_columns(
    table: Table,
    header: Sequence[str],
    mapping: Optional[Mapping[str, str]],
    path: Path,
    header_line: int = 1,
) -> ColumnPlan:
    """Match the file's header to `table`, with the user's mapping if any.

    With a mapping, header columns named like a table column fill it too, and other columns
    are ignored. Without one, every header column must be a table column.
    """
    where = str(path)
    found = ", ".join(header)
    repeated = sorted({name for name in header if list(header).count(name) > 1})
    if repeated:
        raise InputError(
            f"the header names these columns twice: {', '.join(repeated)}", where, header_line
        )
    specs = {spec.name: spec for spec in column_specs(table)}
    mapping = dict(mapping or {})
    unknown_targets = [dest for dest in mapping if dest not in specs]
    if unknown_targets:
        raise ConfigError(
            f"table {table.name} has no column {', '.join(map(repr, unknown_targets))}; "
            f"its columns are: {', '.join(specs)}"
        )
    absent = [source for source in mapping.values() if source not in header]
    if absent:
        raise InputError(
            f"the mapping names column(s) {', '.join(map(repr, absent))} that the file does "
            f"not have; the file's columns are: {found}",
            where,
            header_line,
        )
    if not mapping:
        extra = [name for name in header if name not in specs]
        if extra:
            raise InputError(
                f"unknown column(s) {', '.join(map(repr, extra))} for table {table.name} "
                f"(its columns are: {', '.join(specs)}); use --map TABLE_COLUMN=FILE_COLUMN "
                "or --mapping FILE.json to say which file column fills which table column",
                where,
                header_line,
            )
    for name in header:
        if name in specs and name not in mapping and name not in mapping.values():
            mapping[name] = name
    missing = [name for name, spec in specs.items() if spec.required and name not in mapping]
    if missing:
        raise InputError(
            f"missing required column(s) {', '.join(map(repr, missing))} for table "
            f"{table.name}; the file's columns are: {found} (use --map TABLE_COLUMN=FILE_COLUMN "
            "if they have other names)",
            where,
            header_line,
        )
    ordered = {name: mapping[name] for name in specs if name in mapping}
    used = set(ordered.values())
    return ColumnPlan(table, ordered, [name for name in header if name not in used])
