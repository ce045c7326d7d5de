"""``katib experiment compare|ui``: compare trials and experiments; browse one live in optuna-dashboard.

katib experiment compare quickstart
katib experiment compare lr-tpe lr-random --top 5 --hide tag --html report.html
katib experiment compare quickstart --sort eval_loss --output csv > trials.csv
katib experiment ui quickstart --port 8080
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from experiments.cli._names import experiment_name
from experiments.errors import KatibSuiteError, UsageError

DASHBOARD_PIP = "pip install 'optuna-dashboard>=0.17'"
DEFAULT_UI_PORT = 8080


def _storage_flags(parser: argparse.ArgumentParser, backend: bool = True) -> None:
    from experiments.cli._run_cmds import cluster_flags, storage_flag

    storage_flag(parser)
    if backend:
        parser.add_argument(
            "--backend", default="local", help="where the experiments ran: local (default) or cluster"
        )
        cluster_flags(parser)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got: {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0-65535 (0: any free port); got: {text}")
    return value


def register(verbs) -> None:
    """Add ``compare`` and ``ui`` to ``katib experiment``."""
    p = verbs.add_parser(
        "compare",
        help="compare the trials of one or more experiments: table, JSON/CSV, or an offline HTML report",
        description="Compare trials: status and why, parameters, objective by its metricStrategy, "
        "additional metrics, duration and trial-seconds (duration x processes); the best row is marked "
        "with *. With several experiments, their optimal trials side by side.",
        epilog="examples:\n"
        "  katib experiment compare quickstart\n"
        "  katib experiment compare lr-tpe lr-random --top 5 --html report.html\n"
        "  katib experiment compare quickstart --sort eval_loss --hide warmup_ratio\n"
        "  katib experiment compare quickstart --output csv > trials.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("names", nargs="+", metavar="NAME", type=experiment_name, help="experiment name(s)")
    p.add_argument(
        "--sort",
        metavar="METRIC",
        help="order rows best first by this metric (or a parameter, "
        "duration, trial-seconds); default: creation order",
    )
    p.add_argument(
        "--top", type=_positive, metavar="K", help="only the K best trials (by --sort, else the objective)"
    )
    p.add_argument(
        "--hide",
        action="append",
        default=[],
        metavar="PARAM",
        help="leave this parameter or metric out (repeat, or comma-separate); in --html it starts hidden",
    )
    p.add_argument(
        "--output",
        "-o",
        choices=("text", "json", "csv"),
        default="text",
        help="text (default), or json/csv for machines",
    )
    p.add_argument("--html", metavar="FILE", help="also write a self-contained offline HTML report to FILE")
    _storage_flags(p)
    p.set_defaults(handler=_compare)

    p = verbs.add_parser(
        "ui",
        help="browse experiments live in optuna-dashboard (bound to 127.0.0.1; Ctrl-C stops it)",
        description="Serve optuna-dashboard on the local backend's experiment storage, on 127.0.0.1 only. "
        "Learning curves, parameter importances and the trials of running experiments update live.",
        epilog="examples:\n  katib experiment ui\n  katib experiment ui quickstart --port 8081",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "name",
        nargs="?",
        metavar="NAME",
        type=experiment_name,
        help="open this experiment's page (default: the list)",
    )
    p.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_UI_PORT,
        metavar="P",
        help=f"port on 127.0.0.1 (default: {DEFAULT_UI_PORT}; 0 picks a free one)",
    )
    _storage_flags(p, backend=False)
    p.set_defaults(handler=_ui)


def _hidden(values: list[str]) -> list[str]:
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _compare(args) -> int:
    from pathlib import Path

    from experiments.cli._run_cmds import cluster_options
    from experiments.compare import _table
    from experiments.compare._rows import load

    cluster = cluster_options(args)
    views = load(args.names, backend=args.backend, storage=args.storage, workdir=Path.cwd(), **cluster)
    hidden = _hidden(args.hide)
    options = {"sort": args.sort, "top": args.top, "hidden": hidden}
    # Check every flag before writing anything: a bad --sort must not leave a report behind.
    _table.to_document(views, **options)
    if args.html:
        from experiments.compare._report import write_report

        path = write_report(args.html, views, hidden=hidden)
        print(f"wrote {path} (opens offline)", file=sys.stderr)
    if args.output == "json":
        _table.print_json(views, sys.stdout, **options)
    elif args.output == "csv":
        _table.print_csv(views, sys.stdout, **options)
    else:
        _table.print_text(views, sys.stdout, **options)
    return 0


def _stop_signal() -> Any:
    """An event set by Ctrl-C or SIGTERM, even where the shell started us with SIGINT ignored (a background
    job): the dashboard is a foreground tool, and a clean stop closes its port. The server runs in another
    thread, so a signal arriving mid-request cannot be swallowed by wsgiref's per-request error handler."""
    import signal
    import threading

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())
    return stop


def _ui(args) -> int:
    from pathlib import Path
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    try:
        import optuna_dashboard
    except ImportError:
        raise KatibSuiteError(
            f"`katib experiment ui` needs optuna-dashboard, which is not installed: {DASHBOARD_PIP}"
        ) from None
    from experiments.backends.local._store import Store, storage_url

    store = Store(storage_url(args.storage, Path.cwd()))
    path = "/dashboard/"
    if args.name:
        store.require(args.name)
        path = f"/dashboard/studies/{store.storage.get_study_id_from_name(args.name)}"
    app = optuna_dashboard.wsgi(store.storage)

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format, *log_args):  # one line per request would drown the URL
            pass

    try:
        server = make_server("127.0.0.1", args.port, app, handler_class=QuietHandler)
    except OSError as error:
        raise UsageError(
            f"cannot listen on 127.0.0.1:{args.port}: {error.strerror or error}; pick another --port (0: any free one)"
        ) from None
    import threading

    stop = _stop_signal()
    port = server.server_address[1]
    serving = threading.Thread(target=server.serve_forever, name="optuna-dashboard", daemon=True)
    serving.start()
    print(f"optuna-dashboard for {store.url}", flush=True)
    print(f"open http://127.0.0.1:{port}{path}   (Ctrl-C stops it)", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
    print("stopped", flush=True)
    return 0
