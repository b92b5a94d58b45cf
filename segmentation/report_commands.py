"""CLI commands that send segments elsewhere: export (CSV) and digest (Slack or terminal)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

from segmentation.cli import engine_from_args
from segmentation.errors import ConfigError, NoDataError
from segmentation.export import export_csv, export_to_path
from segmentation.language.vocabulary import Vocabulary
from segmentation.queries import SegmentQueries
from segmentation.query import Query, parse_where


def _segment(queries: SegmentQueries, run, name: str) -> str:
    found = Vocabulary.for_run(run).segment_named(name)
    if found is None:
        raise NoDataError(
            f"{run.label} has no segment '{name}'; its segments are " + ", ".join(run.segment_names)
        )
    return found


def export_query(queries: SegmentQueries, args: argparse.Namespace) -> Query:
    """The Query an export command line asks for (segment by name or tier word, filters)."""
    run = queries.resolve_run(args.run)
    try:
        filters = tuple(parse_where(text) for text in args.where or ())
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    segments = (_segment(queries, run, args.segment),) if args.segment else ()
    return Query("list", segments=segments, filters=filters, run=run.id)


def cmd_export(args: argparse.Namespace) -> int:
    queries = SegmentQueries(engine=engine_from_args(args))
    query = export_query(queries, args)
    if args.out:
        rows = export_to_path(queries, query, Path(args.out))
        print(f"{rows:,} users written to {args.out}", file=sys.stderr)
    else:
        rows = export_csv(queries, query, sys.stdout)
        sys.stdout.flush()
    return 0


def send_digest(engine, channel: Optional[str] = None) -> None:
    """Post the digest to `channel` (or $SI_DIGEST_CHANNEL) with SLACK_BOT_TOKEN, else print
    it. Raises SlackPostError when Slack does not take it."""
    from segmentation.digest import build_digest
    from segmentation.render.markup import plain
    from segmentation.slack_post import SlackTarget, post_reply

    reply, chart = build_digest(SegmentQueries(engine=engine))
    channel = channel or os.environ.get("SI_DIGEST_CHANNEL") or None
    target = SlackTarget.from_env(channel)
    if target is None:
        if channel:
            print(f"SLACK_BOT_TOKEN is not set: not posting to {channel}", file=sys.stderr)
        print(plain(reply, ansi=sys.stdout.isatty()))
        if chart is not None:
            print(f"Chart ({chart.title}): {chart.path}")
        return
    post_reply(target, reply, chart)
    print(f"Digest posted to {target.channel}")


def cmd_digest(args: argparse.Namespace) -> int:
    send_digest(engine_from_args(args), args.channel)
    return 0


def register(subparsers) -> None:
    """Add export and digest to `python -m segmentation`."""
    export = subparsers.add_parser(
        "export", help="a segment's members as CSV (features, score, attributes), streamed"
    )
    export.add_argument("segment", nargs="?", help="a segment name (default: every segment)")
    export.add_argument(
        "--where",
        action="append",
        metavar="FILTER",
        help="only users matching, e.g. country=DE, device!=iOS, signup_date>=2026-01-01",
    )
    export.add_argument("--out", metavar="FILE", help="write here (default: standard output)")
    export.add_argument("--run", type=int, help="a run id (default: the current run)")
    export.set_defaults(handler=cmd_export)

    digest = subparsers.add_parser(
        "digest", help="sizes, changes and quality of the current run, to Slack or the terminal"
    )
    digest.add_argument(
        "--channel",
        help="Slack channel (default $SI_DIGEST_CHANNEL; needs SLACK_BOT_TOKEN, else printed)",
    )
    digest.set_defaults(handler=cmd_digest)
