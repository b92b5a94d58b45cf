"""CLI commands for loading data: `ingest`, `ingest-features` and `generate`."""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional

from segmentation.errors import ConfigError, InputErrors
from segmentation.ingest.csv_blocks import DEFAULT_BLOCK_BYTES

TABLE_HELP = {
    "clickstream": "user_id, timestamp, url; optional referrer, device, session_id, time_spent",
    "search_queries": "user_id, timestamp, query",
    "article_views": "user_id, article_id, timestamp; optional time_spent",
    "users": "user_id; optional country, device, plan, signup_date",
}


def register(subparsers) -> None:
    """Add the ingest, ingest-features and generate commands."""
    _register_ingest(subparsers)
    _register_ingest_features(subparsers)
    _register_generate(subparsers)


def _register_ingest(subparsers) -> None:
    from segmentation.ingest.values import TIMESTAMP_FORMAT_HELP

    tables = "\n".join(f"  {name:<15} {columns}" for name, columns in TABLE_HELP.items())
    parser = subparsers.add_parser(
        "ingest",
        help="load a raw event CSV (or users CSV) into its table",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_paragraph(
            "Load a CSV file into a table, in one transaction: on any problem nothing is loaded "
            "and every problem is listed with its line and column. Loading the same content "
            "twice is a no-op; loading users again replaces those users' rows."
        )
        + f"\n\nTables and their columns (time_spent in seconds):\n{tables}",
        epilog=(
            "example (Globo news clicks):\n"
            "  python -m segmentation ingest clickstream globo_news_clicks_48h.csv \\\n"
            "    --map url=click_article_id --map timestamp=click_timestamp \\\n"
            "    --map device=click_deviceGroup --map referrer=click_referrer_type \\\n"
            "    --timestamp-format epoch_ms"
        ),
    )
    parser.add_argument("table", choices=list(TABLE_HELP), metavar="TABLE", help="target table")
    parser.add_argument("file", type=Path, metavar="FILE", help="CSV file with a header line")
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="COLUMN=FILE_COLUMN",
        help="fill table COLUMN from the file's FILE_COLUMN (repeatable). With a mapping, file "
        "columns named like table columns are used as they are and other columns are ignored",
    )
    parser.add_argument(
        "--mapping",
        type=Path,
        metavar="FILE.json",
        help='the mapping as a JSON object {"column": "file column"}; --map entries win',
    )
    parser.add_argument(
        "--timestamp-format",
        metavar="FORMAT",
        help="how timestamps are written: " + TIMESTAMP_FORMAT_HELP.replace("%", "%%"),
    )
    parser.add_argument(
        "--keep",
        choices=("first", "last"),
        help="users only: which row wins when a user id repeats (without it, a repeat is an error)",
    )
    parser.add_argument(
        "--block-mb",
        type=float,
        default=DEFAULT_BLOCK_BYTES / 2**20,
        help="read the file in blocks of this many MB; peak memory is about 20-30 times this "
        "(default %(default)g)",
    )
    parser.set_defaults(handler=_ingest)


def _register_ingest_features(subparsers) -> None:
    parser = subparsers.add_parser(
        "ingest-features",
        help="load a per-user feature table (one row per user, numeric columns)",
        description=_paragraph(
            "Store a CSV with one row per user as the feature table NAME (loading a NAME again "
            "replaces it). Bad rows (wrong number of fields, missing or non-numeric values, "
            "swapped columns, repeated ids) fail the load with their line numbers, or with "
            "--skip-bad-rows are left out and listed in the stored report."
        ),
        epilog=(
            "examples:\n"
            "  python -m segmentation ingest-features app userbehaviour.csv --id-column userid "
            "--lower 'Last Visited Minutes'\n"
            "  python -m segmentation ingest-features app15 app_user_behavior_features15.csv "
            "--id-column none --id-offset 100000 "
            "--lower days_since_last_login,crash_events_last_30_days"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", metavar="NAME", help="name of the feature table")
    parser.add_argument("file", type=Path, metavar="FILE", help="CSV file with a header line")
    parser.add_argument(
        "--id-column",
        required=True,
        metavar="COLUMN",
        help="column holding the user id, or 'none' to number the rows (see --id-offset)",
    )
    parser.add_argument(
        "--features",
        metavar="A,B,...",
        help="comma-separated feature columns (default: every numeric column but the id)",
    )
    parser.add_argument(
        "--lower",
        metavar="A,B,...",
        default="",
        help="comma-separated features where a LOWER value means MORE engaged "
        "(e.g. days_since_last_login)",
    )
    parser.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="load the good rows and report the bad ones instead of failing",
    )
    parser.add_argument(
        "--id-offset",
        type=int,
        default=1,
        metavar="N",
        help="with --id-column none: the user id of the first data row (default 1)",
    )
    parser.set_defaults(handler=_ingest_features)


def _register_generate(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write synthetic demo CSVs (clickstream, searches, article views, users)",
        description=(
            "Write clickstream.csv, search_queries.csv, article_views.csv and users.csv for "
            "N synthetic users (about 30 events each; about 50% low, 35% moderate and "
            "15% highly engaged). The same options always give the same files."
        ),
    )
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="folder to write into")
    parser.add_argument("--users", type=int, required=True, metavar="N", help="number of users")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--days", type=int, default=30, help="days of activity (default 30)")
    parser.add_argument(
        "--end",
        type=_date,
        metavar="YYYY-MM-DD",
        help="end of the activity window, UTC (default: a fixed date, for reproducible files)",
    )
    parser.set_defaults(handler=_generate)


def _paragraph(text: str) -> str:
    return textwrap.fill(text, width=88)


def _date(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got '{text}'") from None


def _split(text: Optional[str]) -> Optional[List[str]]:
    if text is None:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


def _mapping(args: argparse.Namespace) -> Optional[Dict[str, str]]:
    from segmentation.ingest.columns import parse_map_options, read_mapping_file

    mapping: Dict[str, str] = {}
    if args.mapping:
        mapping.update(read_mapping_file(args.mapping))
    mapping.update(parse_map_options(args.map))
    return mapping or None


def _ingest(args: argparse.Namespace) -> int:
    from segmentation.cli import engine_from_args
    from segmentation.ingest import ingest_csv

    if args.block_mb <= 0:
        raise ConfigError("--block-mb must be positive")
    mapping = _mapping(args)
    engine = engine_from_args(args)
    result = ingest_csv(
        engine,
        args.file,
        args.table,
        mapping=mapping,
        timestamp_format=args.timestamp_format,
        keep=args.keep,
        block_bytes=int(args.block_mb * 2**20),
    )
    print(result.summary(args.file))
    return 0


def _ingest_features(args: argparse.Namespace) -> int:
    from segmentation.cli import engine_from_args
    from segmentation.ingest import load_feature_table

    engine = engine_from_args(args)
    try:
        result = load_feature_table(
            engine,
            args.file,
            args.name,
            args.id_column,
            features=_split(args.features),
            lower_is_better=_split(args.lower) or (),
            skip_bad_rows=args.skip_bad_rows,
            id_offset=args.id_offset,
        )
    except InputErrors as problems:
        print(f"error: {problems}", file=sys.stderr)
        print("hint: --skip-bad-rows loads the other rows and reports these", file=sys.stderr)
        return problems.exit_code
    print(result.summary())
    return 0


def _generate(args: argparse.Namespace) -> int:
    from segmentation.demo_data import generate_demo_data

    if args.users < 1 or args.days < 1:
        raise ConfigError("--users and --days must be at least 1")
    started = time.perf_counter()
    paths = generate_demo_data(
        args.out_dir, args.users, seed=args.seed, days=args.days, end=args.end
    )
    seconds = time.perf_counter() - started
    print(f"wrote {args.users:,} users' data to {args.out_dir} in {seconds:.1f} s:")
    for path in paths.values():
        print(f"  {path.name:<20} {_count_rows(path):>12,} rows")
    return 0


def _count_rows(path: Path) -> int:
    """Data rows of a generated CSV (no quoted newlines there): lines minus the header."""
    lines = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(2**22):
            lines += chunk.count(b"\n")
    return max(lines - 1, 0)
