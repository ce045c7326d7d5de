"""``katib experiment submit|resume|status|trials|list|logs|delete``: run and inspect experiments.

    katib experiment submit experiments/quickstart.yaml --search-space search_spaces/lr-batch.yaml
    katib experiment status quickstart --output yaml
    katib experiment trials quickstart
    katib experiment logs quickstart quickstart-x7k2p9qa --tail 50
    katib experiment resume quickstart --max-trials 20

Every verb talks to a backend through the protocol in ``experiments.backends``; state lives in the
backend's storage (``--storage URL`` or ``$KATIB_STORAGE``; SQLite under ``.katib/`` by default).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import deque
from pathlib import Path
from typing import Any

from experiments._env import STORAGE_ENV, WARM_START_ENV
from experiments._kube import REQUEST_TIMEOUT, positive_seconds
from experiments.cli._names import experiment_name, trial_name
from experiments.errors import KatibSuiteError, NotFoundError, UsageError

OUTPUTS = ("text", "json", "yaml")


class ExperimentExistsError(KatibSuiteError):
    """Submitting under a name the storage already holds."""


# ---------------------------------------------------------------- wiring


def storage_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        metavar="URL",
        default=None,
        help=f"where experiments are kept: any SQLAlchemy URL (default: ${STORAGE_ENV}, "
        "else sqlite:///.katib/experiments.db in this directory)",
    )


def cluster_flags(parser: argparse.ArgumentParser) -> None:
    """--backend cluster: which cluster and namespace, as kubectl picks them (experiments.backends.cluster)."""
    k8s = parser.add_argument_group("--backend cluster")
    k8s.add_argument("--namespace", "-n", metavar="NS", help="namespace (default: the context's)")
    k8s.add_argument("--context", metavar="CTX", help="kube context (default: the current one)")
    k8s.add_argument(
        "--kubeconfig", metavar="FILE", help="kube config (default: $KUBECONFIG, ~/.kube/config)"
    )
    k8s.add_argument(
        "--request-timeout",
        metavar="SECONDS",
        type=positive_seconds,
        help=f"give up on an API request the server does not answer (default: {REQUEST_TIMEOUT:g})",
    )


def cluster_options(args) -> dict[str, Any]:
    """The --namespace/--context/--kubeconfig given; a UsageError when they come without --backend cluster."""
    options = {k: getattr(args, k, None) for k in ("namespace", "context", "kubeconfig", "request_timeout")}
    given = [f"--{k.replace('_', '-')}" for k, v in options.items() if v]
    if given and getattr(args, "backend", None) != "cluster":
        raise UsageError(f"{', '.join(given)} go(es) with --backend cluster; add it, or drop {given[0]}")
    return options


def _common(parser: argparse.ArgumentParser, backend: bool = True) -> None:
    storage_flag(parser)
    if backend:
        parser.add_argument(
            "--backend",
            default=None,
            help="where trials run: local or cluster (default: where NAME lives, else local)",
        )
        cluster_flags(parser)


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", "-o", choices=OUTPUTS, default="text", help="text (default), or json/yaml for machines"
    )


def _verb(verbs, name: str, help_text: str, examples: str, handler) -> argparse.ArgumentParser:
    parser = verbs.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser


def _budget_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-trials", type=int, metavar="N", help="new maxTrialCount (total, not extra)")
    parser.add_argument("--parallel-trials", type=int, metavar="N", help="new parallelTrialCount")
    parser.add_argument("--max-failed-trials", type=int, metavar="N", help="new maxFailedTrialCount")


def register(verbs) -> None:
    """Add the run verbs to ``katib experiment``."""
    p = _verb(
        verbs,
        "submit",
        "run an Experiment YAML to completion, showing live progress",
        "  katib experiment submit experiments/quickstart.yaml\n"
        "  katib experiment submit experiments/quickstart.yaml --search-space search_spaces/lr-batch.yaml "
        "--name lr-sweep-2\n"
        "  katib experiment submit /tmp/exp.yaml --backend cluster --namespace kubeflow-user --dry-run\n"
        "  KATIB_STORAGE=postgresql://user@db/katib katib experiment submit experiments/quickstart.yaml\n"
        f"  {WARM_START_ENV}=0 katib experiment submit experiments/quickstart.yaml   "
        "# no warm trainer: every trial process imports its libraries",
        _submit,
    )
    p.add_argument("file", metavar="FILE", help="a Katib Experiment YAML (kubectl-apply-able)")
    p.add_argument(
        "--search-space", metavar="S", help="a search-space YAML replacing spec.parameters/algorithm"
    )
    p.add_argument(
        "--name", metavar="N", type=experiment_name, help="run under this name instead of metadata.name"
    )
    p.add_argument(
        "--detach",
        action="store_true",
        help="run the sweep in a background process and return; follow it with `katib experiment watch NAME`",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="--backend cluster: print the Experiment that would be created and talk to nothing",
    )
    _common(p)

    p = _verb(
        verbs,
        "watch",
        "follow a running experiment's live progress (runs it here if no runner drives it)",
        "  katib experiment submit experiments/quickstart.yaml --detach\n  katib experiment watch quickstart",
        _watch,
    )
    p.add_argument("name", metavar="NAME", type=experiment_name)
    _common(p)

    p = _verb(
        verbs,
        "resume",
        "continue an interrupted or finished experiment, optionally with a bigger budget",
        "  katib experiment resume quickstart\n  katib experiment resume quickstart --max-trials 24 --parallel-trials 2",
        _resume,
    )
    p.add_argument("name", metavar="NAME", type=experiment_name)
    _budget_flags(p)
    _common(p)

    p = _verb(
        verbs,
        "status",
        "show an experiment's condition, counters and best trial",
        "  katib experiment status quickstart\n  katib experiment status quickstart -o yaml   "
        "# the Experiment as `kubectl get experiment -o yaml` shows it",
        _status,
    )
    p.add_argument("name", metavar="NAME", type=experiment_name)
    _output(p)
    _common(p)

    p = _verb(
        verbs,
        "trials",
        "list an experiment's trials with parameters, status and objective",
        "  katib experiment trials quickstart\n  katib experiment trials quickstart -o json",
        _trials,
    )
    p.add_argument("name", metavar="NAME", type=experiment_name)
    _output(p)
    _common(p)

    p = _verb(verbs, "list", "list experiments in the storage", "  katib experiment list -o json", _list)
    _output(p)
    _common(p)

    p = _verb(
        verbs,
        "logs",
        "print one replica's log of a trial",
        "  katib experiment logs quickstart quickstart-x7k2p9qa\n"
        "  katib experiment logs quickstart quickstart-x7k2p9qa --replica worker-0 --tail 20",
        _logs,
    )
    p.add_argument("name", metavar="NAME", type=experiment_name)
    p.add_argument("trial", metavar="TRIAL", type=trial_name)
    p.add_argument("--replica", default=None, help="replica to show (default: master-0, the primary)")
    p.add_argument("--tail", type=int, metavar="N", help="only the last N lines")
    _common(p)

    p = _verb(
        verbs,
        "delete",
        "delete an experiment, its trials and their logs",
        "  katib experiment delete quickstart --yes",
        _delete,
    )
    p.add_argument("name", metavar="NAME", type=experiment_name)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    _common(p)


# ---------------------------------------------------------------- helpers


def _backend(args):
    from experiments.backends import get_backend

    args.backend = getattr(args, "backend", None) or _where(args)
    cluster = cluster_options(args)
    if args.backend == "cluster":
        return get_backend("cluster", **cluster, storage=args.storage, workdir=Path.cwd())
    return get_backend(args.backend, storage=args.storage, workdir=Path.cwd())


def _where(args) -> str:
    """The backend NAME lives on: the cluster when this directory submitted it there (and no local one has
    that name), else local."""
    name = getattr(args, "name", None)
    if not name or args.storage or getattr(args, "file", None):
        return "local"
    from experiments.backends.cluster._record import recall

    if recall(Path.cwd(), name) is None:
        return "local"
    from experiments.backends import get_backend

    return "local" if get_backend("local", workdir=Path.cwd()).store.exists(name) else "cluster"


def _storage_flag(args) -> str:
    if getattr(args, "backend", "local") == "cluster":  # the flags that reach the same cluster again
        flags = [("--backend", "cluster")] + [
            (f"--{k}", getattr(args, k, None)) for k in ("namespace", "context", "kubeconfig")
        ]
        return "".join(f" {flag} {value}" for flag, value in flags if value)
    # Repeat --storage in suggested commands only when the user typed it; the env var carries over itself.
    return f" --storage {args.storage}" if args.storage else ""


def _emit(document: Any, output: str) -> None:
    if output == "json":
        print(json.dumps(document, indent=2, default=str))
    else:
        from experiments.spec import dump_yaml  # kubectl reads it back as the same object

        print(dump_yaml(document), end="")


def _console():
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        # Piped or redirected: rich would squeeze tables into 80 columns; keep whole values instead.
        console = Console(highlight=False, width=240)
    return console


def _get(backend, name: str):
    return backend.get(name)


# ---------------------------------------------------------------- verbs


def _submit(args) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise NotFoundError(
            f"experiment file not found: {args.file}; pass the path of a Katib Experiment YAML"
        )
    if args.search_space and not Path(args.search_space).is_file():
        raise NotFoundError(f"search-space file not found: {args.search_space}; pass a search-space YAML")
    from experiments.spec import load_experiment

    # Validated for where it will run: what only Katib can run is refused here for the local backend.
    target = "cluster" if getattr(args, "backend", "local") == "cluster" else "local"
    experiment = load_experiment(path, search_space=args.search_space, backend=target)
    backend = _backend(args)
    if args.dry_run:
        return _dry_run(backend, experiment, args)
    name = args.name or experiment.name
    if getattr(args, "backend", "local") != "cluster":  # Katib answers 409 itself, in the right namespace
        try:
            backend.get(name)
        except NotFoundError:
            pass
        else:
            flag = _storage_flag(args)
            raise ExperimentExistsError(
                f'experiment "{name}" already exists; continue it with `katib experiment resume {name}{flag}` '
                f"(add --max-trials N for more trials), submit under another name with --name, "
                f"or remove it with `katib experiment delete {name} --yes{flag}`"
            )
    handle = backend.submit(experiment, name=args.name)
    if args.detach or getattr(handle, "detached", False):
        return _detach(handle, args)
    return _drive(handle, args, experiment.parallel_trial_count, experiment.max_trial_count)


def _dry_run(backend, experiment, args) -> int:
    """Print exactly the object the backend would create (YAML kubectl reads back as the same object)."""
    manifest = getattr(backend, "manifest", None)
    if manifest is None:
        raise UsageError(
            "--dry-run prints the Experiment --backend cluster would create; for the local backend use "
            "`katib experiment validate FILE` or `katib experiment render FILE`"
        )
    from experiments.spec import dump_yaml

    print(dump_yaml(manifest(experiment, name=args.name)), end="")
    return 0


def _detach(handle, args, start_timeout: float = 60.0) -> int:
    """Start ``katib experiment watch NAME`` in its own session (it drives the sweep) and return.

    Returns only once that runner has taken the experiment (it left Created), so a ``watch`` typed
    right after follows it instead of starting a second runner.
    """
    import subprocess
    import time

    if hasattr(handle, "detach"):  # the backend runs it elsewhere (cluster: Katib's controller)
        print(handle.detach())
        return 0
    log = Path.cwd() / ".katib" / f"runner-{handle.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "experiments.cli", "experiment", "watch", handle.name]
    if args.storage:
        command += ["--storage", args.storage]
    if args.backend != "local":
        command += ["--backend", args.backend]
    with log.open("ab") as out:
        runner = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + start_timeout
    while handle.status().condition == "Created":
        if runner.poll() is not None or time.monotonic() > deadline:
            raise KatibSuiteError(
                f"the background runner for {handle.name} did not start (exit code {runner.poll()}); "
                f"see {log}, then run it here with `katib experiment watch {handle.name}{_storage_flag(args)}`"
            )
        time.sleep(0.2)
    flag = _storage_flag(args)
    print(f"experiment {handle.name} is running in the background (pid {runner.pid}, log: {log})")
    print(f"  follow it:  katib experiment watch {handle.name}{flag}")
    print(f"  stop it:    kill -INT {runner.pid}   # finished trials are kept; resume continues it")
    return 0


def _watch(args) -> int:
    handle = _get(_backend(args), args.name)
    experiment = handle.experiment
    # Running means another process drives it (a detached handle: the cluster): Ctrl-C only stops watching.
    following = getattr(handle, "detached", False) or handle.status().condition == "Running"
    return _drive(handle, args, experiment.parallel_trial_count, experiment.max_trial_count, following)


def _resume(args) -> int:
    for flag in ("max_trials", "parallel_trials", "max_failed_trials"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be a positive integer; got: {value}")
    handle = _backend(args).resume(
        args.name,
        max_trial_count=args.max_trials,
        parallel_trial_count=args.parallel_trials,
        max_failed_trial_count=args.max_failed_trials,
    )
    if getattr(handle, "detached", False):
        return _detach(handle, args)
    experiment = handle.experiment
    parallel = args.parallel_trials or experiment.parallel_trial_count
    return _drive(handle, args, parallel, args.max_trials or experiment.max_trial_count)


def _drive(handle, args, parallel: int | None, max_trials: int | None, following: bool = False) -> int:
    """Run the experiment under the progress view; Ctrl-C keeps what finished and says how to go on."""
    from experiments.cli._views import ProgressView, print_summary

    experiment = handle.experiment
    view = ProgressView(experiment, handle.name, parallel or 3, max_trials)
    try:
        with view:
            final = handle.wait(progress=view.update)
    except KeyboardInterrupt:
        if following:
            where = "on the cluster" if getattr(handle, "detached", False) else "in its own process"
            print(f"\nstopped watching; {handle.name} keeps running {where}", file=sys.stderr)
            return 130
        kept = ""
        try:
            from experiments.backends._protocol import TRIAL_FINISHED, TRIAL_KILLED

            status = handle.status()
            finished = sum(
                1 for t in status.trials if t.condition in TRIAL_FINISHED and t.condition != TRIAL_KILLED
            )
            kept = f" ({finished} kept)"
        except Exception:  # best effort: the storage may be what the interrupt hit
            pass
        print(
            f"\ninterrupted: running trials were stopped and marked Killed; finished trials are kept{kept}. "
            f"Continue with: katib experiment resume {handle.name}{_storage_flag(args)}",
            file=sys.stderr,
        )
        return 130
    print_summary(view.console, final, experiment, _storage_flag(args))
    return 0 if final.condition == "Succeeded" else 1


def _status(args) -> int:
    handle = _get(_backend(args), args.name)
    status = handle.status()
    if args.output == "text":
        from experiments.cli._views import status_lines

        console = _console()
        for line in status_lines(status, handle.experiment):
            console.print(line)
        return 0
    from experiments.spec import to_dict
    from experiments.status import katib_experiment

    experiment = handle.experiment
    _emit(katib_experiment(status, to_dict(experiment), namespace=experiment.namespace), args.output)
    return 0


def _trials(args) -> int:
    handle = _get(_backend(args), args.name)
    trials = list(handle.trials())
    if args.output == "text":
        from experiments.cli._views import trials_table

        if not trials:
            print(f"experiment {args.name} has no trials yet")
            return 0
        _console().print(trials_table(trials, handle.experiment))
        return 0
    from experiments.status import katib_trial

    items = [katib_trial(t, handle.name) for t in trials]
    _emit({"apiVersion": "v1", "kind": "List", "items": items}, args.output)
    return 0


def _list(args) -> int:
    summaries = list(_backend(args).list())
    if args.output == "text":
        from experiments.cli._views import list_table

        if not summaries:
            print("no experiments yet; start one with: katib experiment submit experiments/quickstart.yaml")
            return 0
        _console().print(list_table(summaries))
        return 0
    from experiments.status import rfc3339

    rows = [
        {
            "name": s.name,
            "condition": s.condition,
            "reason": s.reason,
            "trials": s.trials,
            "succeeded": s.succeeded,
            "bestValue": s.best_value,
            "created": rfc3339(s.created),
            "backend": s.backend,
            **({"extra": dict(s.extra)} if s.extra else {}),
        }
        for s in summaries
    ]
    _emit(rows, args.output)
    return 0


def _logs(args) -> int:
    if args.tail is not None and args.tail < 0:
        raise UsageError(f"--tail must be >= 0; got: {args.tail}")
    logs = dict(_backend(args).logs(args.name, args.trial))
    if not logs:
        raise NotFoundError(
            f"trial {args.trial} has no logs yet (it has not started); try again once it runs"
        )
    replica = args.replica or ("master-0" if "master-0" in logs else sorted(logs)[0])
    lines = logs.get(replica)  # text lines, without line endings (the backend protocol)
    if lines is None:
        raise NotFoundError(f"--replica must be one of {sorted(logs)}; got: {replica}")
    if args.tail is not None:
        lines = deque(lines, maxlen=args.tail)
    sys.stdout.writelines(f"{line}\n" for line in lines)
    return 0


def _delete(args) -> int:
    backend = _backend(args)
    handle = _get(backend, args.name)  # NotFoundError before asking anything
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to delete {args.name} without confirmation; pass --yes")
        count = len(handle.trials())
        answer = input(f"Delete experiment {args.name}, its {count} trial(s) and their logs? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    running = handle.status().condition == "Running"
    if running:
        # The backend stops it first (its runner as by Ctrl-C, then every trial process) or refuses.
        print(f"{args.name} is running: stopping it first", file=sys.stderr)
    backend.delete(args.name)
    print(
        f"deleted experiment {args.name}"
        + (" (stopped first; its running trials were killed)" if running else "")
    )
    return 0
