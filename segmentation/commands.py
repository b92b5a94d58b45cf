"""CLI commands: build, compare, show, runs, user, members, breakdown, changes, charts, demo."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from segmentation import formatting as fmt
from segmentation.aggregate import CATEGORY_KEYS, GROUP_KEYS, users_exist
from segmentation.build import build_segments
from segmentation.cli import engine_from_args
from segmentation.clustering import ALGORITHMS, OUTLIER_METHODS, ClusterSettings
from segmentation.engine import add_engine_options, engine_from_options
from segmentation.errors import EXIT_BAD_INPUT, ConfigError, NoDataError
from segmentation.language.vocabulary import Vocabulary
from segmentation.queries import SegmentQueries
from segmentation.query import Query, parse_where
from segmentation.render import render
from segmentation.render.markup import plain
from segmentation.render.phrases import notes, weak_separation


def _csv_list(text: Optional[str]) -> Optional[List[str]]:
    if text is None:
        return None
    return [item.strip() for item in text.split(",") if item.strip()]


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by build and demo."""
    parser.add_argument("--k", type=int, default=3, help="number of segments (default 3)")
    parser.add_argument("--algorithm", choices=ALGORITHMS, default="kmeans")
    parser.add_argument("--n-init", type=int, default=10, help="clustering restarts (default 10)")
    parser.add_argument("--random-state", type=int, default=42)
    parser.add_argument("--outliers", choices=OUTLIER_METHODS, default="log")
    parser.add_argument(
        "--names", help="segment names, least engaged first, comma-separated (needed for k != 2, 3)"
    )
    parser.add_argument("--stability-runs", type=int, default=3, help="refits for stability")
    parser.add_argument(
        "--silhouette-exact-max",
        type=int,
        default=50_000,
        help="above this many users the silhouette is computed on a sample (default 50000)",
    )


def settings_from_args(args: argparse.Namespace) -> ClusterSettings:
    return ClusterSettings(
        k=args.k,
        algorithm=args.algorithm,
        n_init=args.n_init,
        random_state=args.random_state,
        outliers=args.outliers,
        names=_csv_list(args.names),
        stability_runs=args.stability_runs,
        silhouette_exact_max=args.silhouette_exact_max,
    )


def print_build(result, engine) -> None:
    """The new run's sizes and quality, with the caveat its answers will carry if any."""
    print(f"Run #{result.run_id} is current: {fmt.count(result.n_users)} users")
    rows = [
        (name, fmt.count(size), fmt.percent(size / result.n_users))
        for name, size in result.sizes.items()
    ]
    print(fmt.table(("segment", "users", "share"), rows))
    metrics = ", ".join(
        f"{name} {value:.3f}"
        for name, value in result.metrics.items()
        if name in ("silhouette", "davies_bouldin", "calinski_harabasz", "stability_ari")
    )
    print(f"Quality: {metrics}")
    caveat = weak_separation(SegmentQueries(engine=engine).run(result.run_id))
    if caveat:
        print(caveat)
    print("Seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()))


def cmd_build(args: argparse.Namespace) -> int:
    from segmentation.locking import refresh_lock
    from segmentation.refresh import parse_duration
    from segmentation.retention import prune_runs

    engine = engine_from_args(args)
    window = parse_duration(args.window) if args.window else None
    compute = engine_from_options(args)
    try:
        with refresh_lock(engine, args.wait):
            result = build_segments(
                engine,
                settings_from_args(args),
                source=args.source,
                features=_csv_list(args.features),
                lower_is_better=_csv_list(args.lower),
                window=window,
                compute=compute,
            )
            pruned = prune_runs(engine, args.keep_runs)
    finally:
        getattr(compute, "stop", lambda: None)()
    print_build(result, engine)
    print_pruned(pruned)
    return 0


def print_pruned(pruned: List[int]) -> None:
    """Say which runs' user rows retention removed (nothing when none)."""
    if pruned:
        ids = ", ".join(f"#{run_id}" for run_id in pruned)
        print(f"Retention: removed the per-user rows of run(s) {ids} (sizes and profiles kept)")


def add_run_options(parser: argparse.ArgumentParser, window_help: str) -> None:
    """--window, --keep-runs and --wait: shared by build and refresh."""
    from segmentation.retention import DEFAULT_KEEP_RUNS

    parser.add_argument("--window", metavar="DURATION", help=window_help)
    parser.add_argument(
        "--keep-runs",
        type=int,
        default=DEFAULT_KEEP_RUNS,
        metavar="N",
        help="keep the per-user rows of the newest N runs only; older runs keep their sizes "
        f"and profiles (default {DEFAULT_KEEP_RUNS}, at least 2)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        nargs="?",
        const=3600.0,
        default=0.0,
        metavar="SECONDS",
        help="when another refresh or build is running, wait for it (default: exit at once "
        "with status 5; --wait alone waits up to an hour)",
    )


def _say(result, query=None) -> None:
    """Print a result with the renderer the chat uses (ANSI bold on a terminal)."""
    print(plain(render(result, query), ansi=sys.stdout.isatty()))


def _filters(args: argparse.Namespace):
    try:
        return tuple(parse_where(text) for text in args.where or ())
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _queries(args: argparse.Namespace) -> SegmentQueries:
    return SegmentQueries(engine=engine_from_args(args))


def cmd_show(args: argparse.Namespace) -> int:
    queries = _queries(args)
    _say(queries.answer(Query("overview", filters=_filters(args))))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    queries = _queries(args)
    rows = [
        (
            f"#{run.id}",
            f"{run.created_at:%Y-%m-%d %H:%M}",
            run.source,
            f"{run.algorithm} k={run.k}",
            fmt.count(run.n_users),
            f"{run.metrics.get('silhouette', float('nan')):.3f}",
        )
        for run in queries.runs(args.limit)
    ]
    print(fmt.table(("run", "created (UTC)", "source", "model", "users", "silhouette"), rows))
    return 0


def cmd_user(args: argparse.Namespace) -> int:
    _say(_queries(args).user_segment(args.user_id))
    return 0


def _segment(queries: SegmentQueries, name: str) -> str:
    """The run's segment called `name` (any case), or a tier word ("low", "top")."""
    run = queries.current_run()
    found = Vocabulary.for_run(run).segment_named(name)
    if found is None:
        raise NoDataError(
            f"{run.label} has no segment '{name}'; its segments are " + ", ".join(run.segment_names)
        )
    return found


def cmd_members(args: argparse.Namespace) -> int:
    queries = _queries(args)
    segments = (_segment(queries, args.segment),) if args.segment else ()
    query = Query(
        "list",
        features=(args.by,) if args.by else (),
        segments=segments,
        filters=_filters(args),
        order=args.order,
        limit=args.limit,
        offset=args.offset,
    )
    _say(queries.answer(query))
    return 0


def cmd_breakdown(args: argparse.Namespace) -> int:
    queries = _queries(args)
    segments = (_segment(queries, args.segment),) if args.segment else ()
    query = Query("count", segments=segments, filters=_filters(args), group_by=(args.by,))
    _say(queries.answer(query))
    return 0


def cmd_changes(args: argparse.Namespace) -> int:
    _say(_queries(args).migration(args.from_run, args.to_run))
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer a question in words, as the assistant would (exit 2 when it can't apply)."""
    from segmentation.language.interpret import understand

    queries = _queries(args)
    run = queries.current_run()

    def find_users(candidates):
        with queries.connection() as conn:
            return users_exist(conn, run, candidates)

    understanding = understand(args.question, Vocabulary.for_run(run), None, None, find_users)
    if not understanding.answerable:
        for line in understanding.problems:
            print(f"cannot apply: {line}", file=sys.stderr)
        if understanding.unknown:
            print("cannot use: " + ", ".join(understanding.unknown), file=sys.stderr)
        if understanding.ask:
            print(understanding.ask[0] + " " + ", ".join(understanding.ask[2]), file=sys.stderr)
        return EXIT_BAD_INPUT
    query = understanding.query
    reply = notes(render(queries.answer(query), query), understanding.notes)
    print(plain(reply, ansi=sys.stdout.isatty()))
    return 0


def cmd_charts(args: argparse.Namespace) -> int:
    from segmentation.charts import write_run_charts

    queries = SegmentQueries(engine=engine_from_args(args))
    for path in write_run_charts(queries, Path(args.out_dir)):
        print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from segmentation.compare import compare_algorithms, comparison_chart

    engine = engine_from_args(args)
    table = compare_algorithms(
        engine, source=args.source, k=args.k, sample=args.sample, random_state=args.random_state
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.chart:
        comparison_chart(table, Path(args.chart))
        print(f"chart: {args.chart}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from segmentation.demo import build_demo

    engine = engine_from_args(args)
    result = build_demo(
        engine, args.users, args.seed, settings_from_args(args), args.out, say=print
    )
    print_build(result, engine)
    return 0


def register(subparsers) -> None:
    """Add the build/inspect commands to `python -m segmentation`."""
    build = subparsers.add_parser("build", help="segment users (a new run, current once complete)")
    build.add_argument(
        "--source", default="events", help="'events' (default) or 'features:NAME' (a feature table)"
    )
    build.add_argument("--features", help="comma-separated features to use (default: all)")
    build.add_argument("--lower", help="feature-table features where lower means more engaged")
    add_cluster_options(build)
    add_engine_options(build)
    add_run_options(
        build, "count only the events of this span before the data's last event, e.g. 30d"
    )
    build.set_defaults(handler=cmd_build)

    compare = subparsers.add_parser("compare", help="score several clustering algorithms")
    compare.add_argument("--source", default="events")
    compare.add_argument("--k", type=int, default=3)
    compare.add_argument("--sample", type=int, default=5000, help="users for the slow algorithms")
    compare.add_argument("--random-state", type=int, default=42)
    compare.add_argument("--chart", help="write a PNG chart of the scores here")
    compare.set_defaults(handler=cmd_compare)

    where = {
        "action": "append",
        "metavar": "FILTER",
        "help": "only users matching, e.g. country=DE, device!=iOS, signup_date>=2026-01-01",
    }
    show = subparsers.add_parser("show", help="the current run's segments")
    show.add_argument("--where", **where)
    show.set_defaults(handler=cmd_show)

    runs = subparsers.add_parser("runs", help="list complete runs, newest first")
    runs.add_argument("--limit", type=int, default=20)
    runs.set_defaults(handler=cmd_runs)

    user = subparsers.add_parser("user", help="a user's segment and why")
    user.add_argument("user_id")
    user.set_defaults(handler=cmd_user)

    members = subparsers.add_parser("members", help="a page of a segment's users")
    members.add_argument("segment", nargs="?", help="a segment name (default: every segment)")
    members.add_argument("--limit", type=int, default=10)
    members.add_argument("--offset", type=int, default=0)
    members.add_argument("--order", choices=("most", "least"), default="most")
    members.add_argument("--by", help="order by this feature instead of the engagement score")
    members.add_argument("--where", **where)
    members.set_defaults(handler=cmd_members)

    breakdown = subparsers.add_parser("breakdown", help="users by an attribute, in a segment")
    breakdown.add_argument("segment", nargs="?", help="a segment name (default: every segment)")
    breakdown.add_argument("--by", choices=CATEGORY_KEYS + GROUP_KEYS[3:], required=True)
    breakdown.add_argument("--where", **where)
    breakdown.set_defaults(handler=cmd_breakdown)

    changes = subparsers.add_parser("changes", help="how users moved between two runs")
    changes.add_argument("--from-run", type=int, help="default: the run before --to-run")
    changes.add_argument("--to-run", type=int, help="default: the current run")
    changes.set_defaults(handler=cmd_changes)

    ask = subparsers.add_parser("ask", help="answer a question in words, like the assistant")
    ask.add_argument("question")
    ask.set_defaults(handler=cmd_ask)

    charts = subparsers.add_parser("charts", help="write the current run's charts (PNG)")
    charts.add_argument("out_dir")
    charts.set_defaults(handler=cmd_charts)

    demo = subparsers.add_parser("demo", help="generate demo data, load it and build segments")
    demo.add_argument("--users", type=int, default=5000)
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--out", help="folder for the generated CSV files (default: var/demo-data)")
    add_cluster_options(demo)
    demo.set_defaults(handler=cmd_demo)
