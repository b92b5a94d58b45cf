"""`python -m segmentation`: one entry point, subcommands registered by their modules.

Every command takes argv (`main(["build", "--k", "3"])`), so tests call it directly, and returns
an exit code: 0 ok, 1 unexpected failure, 2 bad input or options, 3 database unreachable,
4 nothing to work on yet, 5 another refresh or build is running (segmentation.locking).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import List, Optional

from sqlalchemy.engine import Engine

from segmentation import config, db
from segmentation.errors import EXIT_FAILURE, SegmentationError
from segmentation.progress import set_quiet
from segmentation.schema import ensure_schema

# Modules that define subcommands; each has `register(subparsers)`.
COMMAND_MODULES = (
    "segmentation.ingest.commands",
    "segmentation.commands",
    "segmentation.refresh_commands",
    "segmentation.report_commands",
)


def engine_from_args(args: argparse.Namespace) -> Engine:
    """The engine named by --database-url (or DATABASE_URL / embedded SQLite), schema ready."""
    url = args.database_url or config.database_url()
    db.create_database_if_missing(url)
    engine = db.get_engine(url)
    ensure_schema(engine)
    return engine


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m segmentation",
        description="Turn behaviour data into Low / Moderate / Highly Engaged user segments.",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="SQLAlchemy URL, e.g. mysql+pymysql://user@host:3306/db "
        "(default: $DATABASE_URL, else the embedded SQLite file in var/)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Parse argv, run the command, print errors for people, return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    set_quiet(args.quiet)
    try:
        return int(args.handler(args) or 0)
    except SegmentationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        db.dispose_engines()
