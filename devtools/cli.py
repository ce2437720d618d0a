"""Command line of the development tools (demo, sample archive, benchmarks).

They need ``requirements-dev.txt`` (embedded Postgres, moto's S3 server, FalkorDB) and run from
a checkout; the product's own CLI is ``python -m include.album``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_demo(args: argparse.Namespace) -> int:
    from devtools import demo

    return demo.run(Path(args.state_dir) if args.state_dir else None, Path(args.archive) if args.archive else None)


def cmd_up(args: argparse.Namespace) -> int:
    from devtools import demo

    return demo.up(Path(args.state_dir) if args.state_dir else None)


def cmd_ui(args: argparse.Namespace) -> int:
    from devtools import demo_ui

    return demo_ui.ui(Path(args.state_dir) if args.state_dir else None, args.port)


def cmd_sample(args: argparse.Namespace) -> int:
    from devtools.sample import build_sample_archive, register_sample

    expected = build_sample_archive(args.path)
    if args.register:
        from include.album.admin.commands import application_db

        with application_db(args.dsn) as conn:
            register_sample(conn, expected)
    print(f"sample archive written to {args.path}: {len(expected['channels'])} channels, "
          f"{len(expected['posts'])} posts, {len(expected['albums'])} albums (expectation in expected.json)")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from devtools.benchmark import run_celery, run_sizes

    state_dir = Path(args.state_dir) if args.state_dir else None
    if args.freshness:
        from devtools.benchmark_freshness import run_freshness

        run_freshness(args.freshness, Path(args.out), state_dir)
    elif args.history:
        from devtools.benchmark_history import run_history

        run_history(args.history, Path(args.out), state_dir)
    elif args.steady:
        from devtools.benchmark_steady import run_steady

        run_steady(args.steady, Path(args.out), state_dir)
    elif args.executor == "celery":
        run_celery([int(n) for n in args.workers.split(",")], args.broker, Path(args.out), state_dir)
    else:
        run_sizes([int(size) for size in args.sizes.split(",")], Path(args.out), state_dir)
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.json')}")
    return 0


def cmd_embeddings(args: argparse.Namespace) -> int:
    from devtools.embedding_benchmark import main as embedding_benchmark

    embedding_benchmark()
    return 0


def cmd_vision(args: argparse.Namespace) -> int:
    from devtools.vision_benchmark import main as vision_benchmark

    return vision_benchmark(Path(args.baseline) if args.baseline else None,
                            Path(args.images) if args.images else None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devtools", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the DAG end to end on the sample archive (embedded services)")
    demo.add_argument("--state-dir")
    demo.add_argument("--archive", help="a telegram-archive/1 directory to run on instead of the sample (its "
                                        "expected.json, if any, is checked)")
    demo.set_defaults(func=cmd_demo)
    up = sub.add_parser("up", help="the demo's services again, over its data, until Ctrl-C; prints the exports "
                                   "for python -m include.album and airflow dags test")
    up.add_argument("--state-dir", help="the demo's --state-dir (default .demo)")
    up.set_defaults(func=cmd_up)
    ui = sub.add_parser("ui", help="the albums view over the demo's data, in an Airflow api-server, until Ctrl-C; "
                                   "prints where to open it and how to sign in")
    ui.add_argument("--state-dir", help="the demo's --state-dir (default .demo)")
    ui.add_argument("--port", type=int, help="the api-server's port on 127.0.0.1 (default: a free one)")
    ui.set_defaults(func=cmd_ui)

    sample = sub.add_parser("sample", help="build the deterministic sample archive")
    sample.add_argument("path")
    sample.add_argument("--register", action="store_true", help="also add its channels, tenants, subscriptions")
    sample.add_argument("--dsn", help="application database for --register (default: $ALBUMS_DB_DSN or the "
                                      "Airflow connection albums_db)")
    sample.set_defaults(func=cmd_sample)

    bench = sub.add_parser("benchmark", help="measure each stage and the whole pipeline on synthetic archives")
    bench.add_argument("--sizes", default="100,1000,3000", help="albums per archive (default 100,1000,3000)")
    bench.add_argument("--out", default="docs/benchmarks.md")
    bench.add_argument("--executor", choices=["local", "celery"], default="local",
                       help="celery: the sample archive on the CeleryExecutor with --workers vision workers")
    bench.add_argument("--workers", default="1,2", help="vision worker counts to run with --executor celery")
    bench.add_argument("--broker", default="redis://127.0.0.1:6379/8", help="Celery broker (a Redis database "
                                                                             "of its own: it is flushed)")
    bench.add_argument("--steady", metavar="WINDOWS",
                       help="the steady-state windows instead: A (200 channels, all changed), B (1,000 channels, "
                            "200 changed), C (1,000, all changed) or CHANNELS/CHANGED, comma-separated")
    bench.add_argument("--history", metavar="CHANNELS/DAYS", nargs="?", const="10/14",
                       help="the history import instead: CHANNELS channels x DAYS days through "
                            "telegram_albums_history beside 70 live channels (default 10/14)")
    bench.add_argument("--freshness", metavar="CHANNELS/MINUTES", nargs="?", const="50/30",
                       help="post to searchable with the updates listener instead: CHANNELS channels posting over "
                            "MINUTES minutes under a real scheduler and triggerer, the listener down 5 of them "
                            "(default 50/30)")
    bench.add_argument("--state-dir")
    bench.set_defaults(func=cmd_benchmark)

    sub.add_parser("embeddings", help="retrieval quality and speed of the local embedding models").set_defaults(
        func=cmd_embeddings)
    vision = sub.add_parser("vision", help="vision quality (kind, OCR, labels, retrieval) on the vision set")
    vision.add_argument("--baseline", metavar="CHECKOUT", help="also measure another checkout's local vision "
                                                               "provider, side by side in the same run")
    vision.add_argument("--images", metavar="DIR", help="also write the set's images there, to look at")
    vision.set_defaults(func=cmd_vision)
    return parser


def main(argv: list[str] | None = None) -> int:
    from include.album.admin.cli import run_command

    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
