"""Trials a runner left unfinished when it died: adopted if they still run, recorded if they ended.

On a cluster a trial outlives a crashed Katib controller: its PyTorchJob runs on, and the controller
records it when it comes back. Locally the runner is the controller, so whoever finds its leftovers
(``status`` from another shell, or the next runner) looks at each trial's replicas (``_procs``: pid and
exit-code files, pid-reuse-safe) and its log, and decides as the runner would have (``_outcome``):

- still running: left Running; the next runner adopts it and watches it to the end;
- ended: Succeeded / MetricsUnavailable / Failed from its exit codes and the metrics in its log, so
  its result counts for the optimal trial; past ``activeDeadlineSeconds``: stopped, DeadlineExceeded;
- killed without an exit code, or never fully started: Killed (interrupted; resume runs another).

Optuna's heartbeat / stale-trial machinery (``heartbeat_interval``, ``fail_stale_trials``) does not fit:
it fails every trial whose heartbeat stopped, while Katib keeps a trial whose job still runs or finished.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

from experiments.backends._protocol import (
    EXPERIMENT_FAILED,
    EXPERIMENT_RUNNING,
    REASON_KILLED,
    TRIAL_FAILED,
    TRIAL_FINISHED,
    TRIAL_KILLED,
)
from experiments.backends.local._outcome import (
    Outcome,
    deadline_outcome,
    failure_message,
    succeeded_or_unavailable,
)
from experiments.backends.local._procs import PID_FILE_WAIT, TrialProcesses, kill_orphans
from experiments.backends.local._store import (
    Store,
    _iso,
    now,
    observations_from_json,
    runner_alive,
    to_record,
)
from experiments.spec import Experiment

# After the Master exits 0, workers get this long to exit on their own (the job succeeds with the Master).
WORKER_GRACE_SECONDS = 30.0


@dataclass
class Finding:
    """What became of one unfinished trial."""

    kind: str  # "running", "ended" or "killed"
    procs: TrialProcesses | None = None
    outcome: Outcome | None = None
    why: str = ""
    primary_exited_at: float | None = None  # epoch seconds
    observations: tuple = ()  # what its log holds so far


def inspect(experiment: Experiment, attrs: dict[str, Any], wait_for_pid: float = PID_FILE_WAIT) -> Finding:
    """Decide, from the files and the process table only, what an unfinished trial's replicas did."""
    from pathlib import Path

    from experiments.backends.local._trial import MetricsTail

    if attrs.get("condition") in TRIAL_FINISHED:
        # The runner recorded the end but died before telling Optuna: keep what it recorded.
        kill_orphans(attrs.get("processes"))
        observations = observations_from_json(attrs.get("observations", []))
        outcome = Outcome(attrs["condition"], attrs.get("reason", ""), attrs.get("message", ""), observations)
        return Finding("ended", outcome=outcome)
    replicas, primary, log_dir = attrs.get("replicas"), attrs.get("primary"), attrs.get("log_dir")
    if not replicas or not primary or not log_dir or attrs.get("host") != socket.gethostname():
        # Recorded by an older version, or on another machine: nothing here to look at.
        if attrs.get("host") == socket.gethostname():
            kill_orphans(attrs.get("processes"))
        return Finding("killed", why="the runner stopped without finishing this trial (killed)")
    procs = TrialProcesses(Path(log_dir), replicas, primary)
    states = {name: procs.state(name, wait_for_pid=wait_for_pid) for name in replicas}
    tail = MetricsTail(experiment, Path(attrs.get("metrics_path") or procs.log_path(primary)))
    observations = tuple(tail.read(final=not states[primary].running))
    if any(not s.started for s in states.values()):
        procs.kill()
        return Finding("killed", procs, why="the runner stopped while starting this trial's replicas")
    if tail.error is not None:
        procs.kill()
        outcome = Outcome(
            TRIAL_FAILED, "TrialFailed", f"metrics collection failed: {tail.error}", observations
        )
        return Finding("ended", procs, outcome)
    failed = {name: s.exit_code for name, s in states.items() if s.exit_code not in (None, 0)}
    if failed:
        procs.kill()
        outcome = Outcome(
            TRIAL_FAILED, "TrialFailed", failure_message(primary, failed, procs.log_path), observations
        )
        return Finding("ended", procs, outcome)
    running = [name for name, s in states.items() if s.running]
    deadline = attrs.get("deadline_at")
    if running and deadline is not None and time.time() > float(deadline):
        procs.kill()
        seconds = int(attrs.get("active_deadline_seconds") or 0)
        outcome = deadline_outcome(
            attrs.get("kind", "PyTorchJob"), attrs["katib_trial"], seconds, observations
        )
        return Finding("ended", procs, outcome)
    main = states[primary]
    if main.exit_code == 0:
        graceful = main.exited_at is None or time.time() - main.exited_at > WORKER_GRACE_SECONDS
        if not running or graceful:
            procs.kill()
            outcome = succeeded_or_unavailable(experiment, _metric_names(experiment), observations)
            return Finding("ended", procs, outcome)
        return Finding("running", procs, primary_exited_at=main.exited_at, observations=observations)
    if running and all(s.running or s.exit_code == 0 for s in states.values()):
        return Finding("running", procs, observations=observations)
    procs.kill()
    return Finding("killed", procs, why="its processes were stopped without an exit code (killed)")


def _metric_names(experiment: Experiment) -> tuple[str, ...]:
    from experiments.collector import metric_names

    return metric_names(experiment.objective)


def settle(store: Store, name: str, experiment: Experiment, study=None) -> list[tuple[Any, Finding]]:
    """Record every unfinished trial that ended or was killed; return the ones still running, to adopt."""
    import optuna
    from optuna.trial import TrialState

    from experiments.backends.local._book import TrialBook
    from experiments.backends.local._suggest import Suggester

    study_id = store.storage.get_study_id_from_name(name)
    unfinished = store.storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
    if not unfinished:
        return []
    study = study or optuna.load_study(study_name=name, storage=store.storage)
    book = TrialBook(store, experiment, study, Suggester(experiment), _metric_names(experiment))
    live = []
    for trial in unfinished:
        attrs = dict(trial.user_attrs)
        if "katib_trial" not in attrs:
            # Asked for, never started: the runner died between Optuna's ask and the trial's record.
            _finish_state(store, book.trial_id(trial.number), TrialState.FAIL)
            continue
        finding = inspect(experiment, attrs)
        record = to_record(trial, book.names)
        trial_id = book.trial_id(trial.number)
        try:
            if finding.kind == "running":
                live.append((trial, finding))
                if len(finding.observations) > len(record.observations):
                    # `status` from another shell shows the orphan's progress, as its runner would.
                    book.observe(trial_id, record, finding.observations)
            elif finding.kind == "ended":
                outcome = finding.outcome
                book.complete(
                    trial_id,
                    trial.number,
                    record,
                    outcome.condition,
                    outcome.reason,
                    outcome.message,
                    outcome.observations,
                    adopted=True,
                )
            else:
                kill_orphans(attrs.get("processes"))
                book.complete(
                    trial_id,
                    trial.number,
                    record,
                    TRIAL_KILLED,
                    REASON_KILLED,
                    f"{finding.why}; resume runs a new trial in its place",
                    record.observations,
                    interrupted=True,
                )
        except RuntimeError:
            # Optuna's UpdateFinishedTrialError: another reader settled this trial a moment ago.
            continue
    return live


def _finish_state(store: Store, trial_id: int, state) -> None:
    try:
        store.storage.set_trial_state_values(trial_id, state)
    except RuntimeError:  # finished meanwhile
        pass


def reconcile(store: Store, name: str) -> int:
    """Settle what a dead runner left (trials, and the experiment's Running condition); returns how many
    trials were unfinished. Does nothing while the runner is alive."""
    from optuna.trial import TrialState

    from experiments.spec import parse_experiment

    attrs = store.study_attrs(name)
    if runner_alive(attrs.get("runner")):
        return 0
    study_id = store.storage.get_study_id_from_name(name)
    unfinished = store.storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
    was_running = attrs.get("condition") == EXPERIMENT_RUNNING
    if not unfinished and not was_running:
        return 0
    live = settle(store, name, parse_experiment(attrs["spec"])) if unfinished else []
    if was_running:
        pid = (attrs.get("runner") or {}).get("pid")
        still = (
            f"; {len(live)} trial{'s' if len(live) != 1 else ''} still running will be adopted by "
            f"`katib experiment resume {name}`"
            if live
            else f"; continue with `katib experiment resume {name}`"
        )
        store.set_study_attrs(
            name,
            condition=EXPERIMENT_FAILED,
            reason=REASON_KILLED,
            message=f"the runner (pid {pid}) stopped without finishing{still}",
            completion_time=_iso(now()),
            runner=None,
        )
    return len(unfinished)
