"""CLI commands for segments over time: refresh (with alerts), schedule, prune."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List

from segmentation import formatting as fmt
from segmentation.alerts import (
    DEFAULT_SHARE_POINTS,
    DEFAULT_SIZE_PERCENT,
    AlertSettings,
    deliver_alerts,
)
from segmentation.cli import engine_from_args
from segmentation.commands import add_run_options, print_build, print_pruned
from segmentation.errors import EXIT_FAILURE
from segmentation.locking import Busy, refresh_lock
from segmentation.refresh import UNCHANGED, parse_duration, refresh
from segmentation.retention import DEFAULT_KEEP_RUNS, prune_runs
from segmentation.slack_post import SlackPostError

log = logging.getLogger(__name__)


def _after_refresh(args: argparse.Namespace, said: List[str]):
    """What runs after a refresh, under its lock: the alerts (their text goes to `said`; a
    failed Slack post is returned, to be reported once the refresh's own output is out)."""
    if args.no_alerts:
        return None
    settings = AlertSettings.from_options(
        args.alert_share_points, args.alert_size_percent, args.alert_channel
    )

    def after(engine):
        try:
            return deliver_alerts(engine, settings, say=said.append)
        except SlackPostError as exc:
            return exc

    return after


def refresh_once(args: argparse.Namespace) -> int:
    """One refresh with the command line's options; prints what it did."""
    engine = engine_from_args(args)
    window = UNCHANGED
    if args.window:
        window = None if args.window.lower() in ("all", "none") else parse_duration(args.window)
    said: List[str] = []
    result = refresh(
        engine,
        force=args.force,
        wait=args.wait,
        keep_runs=args.keep_runs,
        window=window,
        after=_after_refresh(args, said),
    )
    run = result.current
    if result.built is None:
        as_of = f" (data up to {run.data_as_of:%d %b %Y %H:%M} UTC)" if run.data_as_of else ""
        print(
            f"Nothing new since run #{run.id} of {run.created_at:%d %b %Y %H:%M} UTC{as_of}: "
            "no run built. --force builds one anyway."
        )
    else:
        print(f"Refreshing: {result.reason}.")
        print_build(result.built, engine)
    print_pruned(result.pruned)
    for text in said:
        print(text)
    if isinstance(result.after, SlackPostError):
        print(f"error: {result.after}; the next refresh tries again", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def add_alert_options(parser: argparse.ArgumentParser) -> None:
    """Alert thresholds and channel (refresh, schedule)."""
    parser.add_argument(
        "--alert-share-points",
        type=float,
        metavar="POINTS",
        help="alert when a segment's share moves by at least this many percentage points "
        f"(default $SI_ALERT_SHARE_POINTS or {DEFAULT_SHARE_POINTS:g})",
    )
    parser.add_argument(
        "--alert-size-percent",
        type=float,
        metavar="PERCENT",
        help="alert when a segment's size changes by at least this percentage "
        f"(default $SI_ALERT_SIZE_PERCENT or {DEFAULT_SIZE_PERCENT:g})",
    )
    parser.add_argument(
        "--alert-channel",
        metavar="CHANNEL",
        help="Slack channel for alerts (default $SI_ALERT_CHANNEL; needs SLACK_BOT_TOKEN; "
        "without them alerts are printed)",
    )
    parser.add_argument("--no-alerts", action="store_true", help="no movement alerts")


def cmd_refresh(args: argparse.Namespace) -> int:
    return refresh_once(args)


def cmd_schedule(args: argparse.Namespace) -> int:
    from segmentation.schedule import run_schedule

    logging.getLogger("segmentation").setLevel(logging.INFO)
    every = parse_duration(args.every) if args.every else None

    def tick() -> None:
        try:
            refresh_once(args)
        except Busy as exc:
            log.warning("skipped this tick: %s", exc)

    extra = []
    if args.digest_cron:
        from segmentation.report_commands import send_digest
        from segmentation.schedule import make_trigger

        def digest() -> None:
            send_digest(engine_from_args(args), args.digest_channel)

        extra.append(("digest", digest, make_trigger(None, args.digest_cron)))
    failed = run_schedule(tick, every, args.cron, args.max_runs, extra=extra)
    if args.max_runs is not None and failed:
        return 1
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    engine = engine_from_args(args)
    with refresh_lock(engine, args.wait):
        pruned = prune_runs(engine, args.keep_runs)
    if not pruned:
        print(f"Nothing to prune: at most {fmt.count(args.keep_runs)} runs have per-user rows.")
    print_pruned(pruned)
    return 0


def register(subparsers) -> None:
    """Add refresh, schedule and prune to `python -m segmentation`."""
    window_help = (
        "count only this span of events before the data's last event, e.g. 30d ('all': every "
        "event); default: the current run's"
    )
    refresh_parser = subparsers.add_parser(
        "refresh", help="build a new run only if the data changed since the current run"
    )
    refresh_parser.add_argument("--force", action="store_true", help="build even if nothing is new")
    add_run_options(refresh_parser, window_help)
    add_alert_options(refresh_parser)
    refresh_parser.set_defaults(handler=cmd_refresh)

    schedule = subparsers.add_parser("schedule", help="run refresh on a schedule (foreground)")
    when = schedule.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", metavar="DURATION", help="e.g. 1h, 30m, 1d (first run at once)")
    when.add_argument("--cron", metavar="EXPR", help='a crontab expression in UTC, "0 * * * *"')
    schedule.add_argument("--max-runs", type=int, help="stop after this many refreshes")
    schedule.add_argument(
        "--digest-cron",
        metavar="EXPR",
        help='also send the digest on this crontab (UTC), e.g. "0 9 * * 1" (Mondays 09:00)',
    )
    schedule.add_argument(
        "--digest-channel", metavar="CHANNEL", help="Slack channel (default $SI_DIGEST_CHANNEL)"
    )
    schedule.add_argument("--force", action="store_true", help=argparse.SUPPRESS)
    add_run_options(schedule, window_help)
    add_alert_options(schedule)
    schedule.set_defaults(handler=cmd_schedule)

    prune = subparsers.add_parser("prune", help="delete the per-user rows of old runs")
    prune.add_argument("--keep-runs", type=int, default=DEFAULT_KEEP_RUNS, metavar="N")
    prune.add_argument("--wait", type=float, nargs="?", const=3600.0, default=0.0)
    prune.set_defaults(handler=cmd_prune)
