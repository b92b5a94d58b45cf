"""CLI commands for segments over time: refresh, schedule, prune."""

from __future__ import annotations

import argparse
import logging

from segmentation import formatting as fmt
from segmentation.cli import engine_from_args
from segmentation.commands import add_run_options, print_build, print_pruned
from segmentation.locking import Busy, refresh_lock
from segmentation.refresh import UNCHANGED, parse_duration, refresh
from segmentation.retention import DEFAULT_KEEP_RUNS, prune_runs

log = logging.getLogger(__name__)


def _after_refresh(args: argparse.Namespace):
    """What runs after a refresh, under its lock (alerts, when configured)."""
    return None


def refresh_once(args: argparse.Namespace) -> int:
    """One refresh with the command line's options; prints what it did."""
    engine = engine_from_args(args)
    window = UNCHANGED
    if args.window:
        window = None if args.window.lower() in ("all", "none") else parse_duration(args.window)
    result = refresh(
        engine,
        force=args.force,
        wait=args.wait,
        keep_runs=args.keep_runs,
        window=window,
        after=_after_refresh(args),
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
    return 0


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

    failed = run_schedule(tick, every, args.cron, args.max_runs)
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
    refresh_parser.set_defaults(handler=cmd_refresh)

    schedule = subparsers.add_parser("schedule", help="run refresh on a schedule (foreground)")
    when = schedule.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", metavar="DURATION", help="e.g. 1h, 30m, 1d (first run at once)")
    when.add_argument("--cron", metavar="EXPR", help='a crontab expression in UTC, "0 * * * *"')
    schedule.add_argument("--max-runs", type=int, help="stop after this many refreshes")
    schedule.add_argument("--force", action="store_true", help=argparse.SUPPRESS)
    add_run_options(schedule, window_help)
    schedule.set_defaults(handler=cmd_schedule)

    prune = subparsers.add_parser("prune", help="delete the per-user rows of old runs")
    prune.add_argument("--keep-runs", type=int, default=DEFAULT_KEEP_RUNS, metavar="N")
    prune.add_argument("--wait", type=float, nargs="?", const=3600.0, default=0.0)
    prune.set_defaults(handler=cmd_prune)
