"""The local experiment loop: ask for assignments, run trials as processes, collect, tell, end as Katib ends.

It runs in the caller's process (``handle.wait()``) and is the storage's only writer. Ctrl-C or
SIGTERM stops every running trial's process tree, marks those trials Killed and leaves the experiment
resumable; trials that already finished are kept as they are.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import signal
import socket
import string
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.backends._protocol import (
    EXPERIMENT_FAILED,
    EXPERIMENT_RUNNING,
    EXPERIMENT_SUCCEEDED,
    REASON_GOAL_REACHED,
    REASON_KILLED,
    REASON_MAX_FAILED_TRIALS_REACHED,
    REASON_MAX_TRIALS_REACHED,
    REASON_SUGGESTION_END_REACHED,
    TRIAL_EARLY_STOPPED,
    TRIAL_FAILED,
    TRIAL_FINISHED,
    TRIAL_KILLED,
    TRIAL_METRICS_UNAVAILABLE,
    TRIAL_RUNNING,
    TRIAL_SUCCEEDED,
    ExperimentStatus,
    Observation,
    ProgressCallback,
    TrialRecord,
)
from experiments.backends.local._store import (
    Store,
    now,
    observations_to_json,
    runner_identity,
    to_record,
)
from experiments.backends.local._trial import (
    MetricsTail,
    TrialProcesses,
    failure_cause,
    note_once,
    plan_trial,
    tail_lines,
)
from experiments.errors import KatibSuiteError
from experiments.spec import Experiment

log = logging.getLogger("experiments.backends.local")

POLL_SECONDS = 0.05
PROGRESS_SECONDS = 1.0
HEARTBEAT_SECONDS = 10.0
# After the Master exits 0, workers get this long to exit on their own (the job succeeds with the Master).
WORKER_GRACE_SECONDS = 30.0
FAILED_CONDITIONS = (TRIAL_FAILED, TRIAL_METRICS_UNAVAILABLE)


class ExperimentInterrupted(KeyboardInterrupt):
    """SIGTERM to the runner, handled like Ctrl-C."""


def new_trial_name(experiment: str) -> str:
    return f"{experiment}-{''.join(random.choices(string.ascii_lowercase, k=8))}"


def metric_names(experiment: Experiment) -> tuple[str, ...]:
    objective = experiment.objective
    return (objective.objective_metric_name, *objective.additional_metric_names)


def is_interrupted(record: TrialRecord, attrs: Mapping[str, Any] | None = None) -> bool:
    """Killed because the runner stopped (not the trial's doing): resume runs a replacement."""
    return record.condition == TRIAL_KILLED and record.reason == REASON_KILLED


def failure_message(procs: TrialProcesses, failed: Mapping[str, int]) -> str:
    """Katib's trial message for a failed job: the first line names the replica and why it failed.

    When one replica fails its peers usually die of a broken connection; the replica whose log names
    a cause (primary first) is the one to report. Without any cause, the primary's last log lines.
    """
    order = sorted(failed, key=lambda replica: replica != procs.primary)
    for replica in order:
        cause = failure_cause(procs.log_path(replica))
        if cause:
            return f"replica {replica} exited with code {failed[replica]}: {cause}"
    replica = order[0]
    log_tail = tail_lines(procs.log_path(replica), 10)
    return f"replica {replica} exited with code {failed[replica]}; last lines of its log:\n{log_tail}"


def optimal(experiment: Experiment, records) -> TrialRecord | None:
    from experiments.collector import optimal_trial

    # Katib picks the optimal trial among finished trials with an observation (the collector filters).
    return optimal_trial(list(records), experiment.objective)


def build_status(store: Store, name: str, experiment: Experiment, records, attrs) -> ExperimentStatus:
    from experiments.backends.local._store import _parse_time

    records = tuple(records)
    return ExperimentStatus(
        name=name,
        condition=attrs.get("condition", "Created"),
        reason=attrs.get("reason", ""),
        message=attrs.get("message", ""),
        trials=records,
        optimal_trial=optimal(experiment, records),
        start_time=_parse_time(attrs.get("start_time")),
        completion_time=_parse_time(attrs.get("completion_time")),
        max_trial_count=experiment.max_trial_count,
        backend="local",
    )


@dataclass
class _Active:
    record: TrialRecord
    optuna_trial: Any
    procs: TrialProcesses
    tail: MetricsTail
    rule: Any = None
    observations: list[Observation] = field(default_factory=list)
    primary_exit_at: float | None = None


class Runner:
    def __init__(self, store: Store, name: str, experiment: Experiment, workdir: Path):
        self.store = store
        self.name = name
        self.experiment = experiment
        self.workdir = workdir
        self.names = metric_names(experiment)
        self.records: dict[str, TrialRecord] = {}
        self.active: dict[str, _Active] = {}
        self.suggestion_end = False
        self._last_progress = 0.0
        self._last_heartbeat = 0.0
        self._changed = True
        self._attrs: dict[str, Any] = {}

    # -- the loop ------------------------------------------------------------------------------------
    def run(self, progress: ProgressCallback | None = None, timeout: float | None = None) -> ExperimentStatus:
        from experiments.backends.local._suggest import Suggester

        self.suggester = Suggester(self.experiment)
        self.stopper = self._early_stopping()
        self.study = self.store.load_study(self.name, sampler=self.suggester.sampler)
        # A single writer: whatever is unfinished now was left by a runner that is gone.
        self.store.kill_leftovers(self.name, "the previous runner stopped without finishing this trial")
        self.records = {
            t.user_attrs["katib_trial"]: to_record(t, self.names) for t in self.store.frozen_trials(self.name)
        }
        self._attrs = self.store.study_attrs(self.name)
        started = self._attrs.get("start_time") or now().isoformat()
        self._set_experiment(
            # The identity first: attributes are written one by one, and a reader (`katib experiment
            # status`) that saw Running without a live runner would reconcile this live run as dead.
            runner=runner_identity() | {"heartbeat": now().isoformat()},
            condition=EXPERIMENT_RUNNING,
            reason="ExperimentRunning",
            message="Experiment is running",
            start_time=started,
            completion_time=None,
        )
        deadline = time.monotonic() + timeout if timeout is not None else None
        previous = self._install_signal_handlers()
        try:
            while True:
                self._raise_if_interrupted()
                self._poll_trials()
                end = self._end()
                if end is not None:
                    self._finish(*end)
                    break
                self._launch()
                if self.suggestion_end and not self.active:
                    self._finish(
                        EXPERIMENT_SUCCEEDED,
                        REASON_SUGGESTION_END_REACHED,
                        "the suggestion service has no more trials",
                    )
                    break
                if deadline is not None and time.monotonic() > deadline:
                    self._stop_all(f"the runner's wait timed out after {timeout:g}s")
                    break
                self._heartbeat()
                self._report(progress)
                time.sleep(POLL_SECONDS)
                self._raise_if_interrupted()
        except KeyboardInterrupt as interrupt:
            signal_name = "SIGTERM" if isinstance(interrupt, ExperimentInterrupted) else "Ctrl-C (SIGINT)"
            # A second Ctrl-C must not cut the clean-up short and leave trials half-recorded.
            held = self._hold_signals()
            try:
                self._stop_all(f"interrupted by {signal_name}")
            finally:
                self._release_signals(held)
            self._report(progress, force=True)
            raise
        finally:
            self._restore_signal_handlers(previous)
        self._report(progress, force=True)
        return self.status()

    def status(self) -> ExperimentStatus:
        return build_status(self.store, self.name, self.experiment, self.records.values(), self._attrs)

    # -- trials --------------------------------------------------------------------------------------
    def _launch(self) -> None:
        limit = self.experiment.parallel_trial_count or 3
        while len(self.active) < limit and not self.suggestion_end:
            if (
                self.experiment.max_trial_count is not None
                and self._counted() >= self.experiment.max_trial_count
            ):
                return
            asked = self.suggester.ask(self.study)
            if asked is None:
                # hyperband also answers None while a rung is still running: end only when it never will.
                self.suggestion_end = self.suggester.done(self.study)
                return
            optuna_trial, assignments = asked
            self._start(optuna_trial, {k: str(v) for k, v in assignments.items()})

    def _start(self, optuna_trial, assignments: dict[str, str]) -> None:
        from experiments.spec import render_trial

        name = new_trial_name(self.name)
        while name in self.records:
            name = new_trial_name(self.name)
        log_dir = self.workdir / ".katib" / self.name / name
        started = now()
        record = TrialRecord(
            name, assignments, TRIAL_RUNNING, "TrialRunning", "", start_time=started, log_dir=log_dir
        )
        namespace = self.experiment.namespace or "default"
        try:
            rendered = render_trial(self.experiment, assignments, name, namespace=namespace)
            plan = plan_trial(self.experiment, rendered, name, log_dir)
        except KatibSuiteError as error:
            self._store_trial(optuna_trial, record, katib_trial=name)
            self._complete(
                optuna_trial, record, TRIAL_FAILED, "TrialFailed", f"cannot start the trial: {error}", []
            )
            return
        for message in plan.notes:
            note_once(message)
        note_once("the local backend ignores container images; trial commands run in this Python environment")
        parallel = (self.experiment.parallel_trial_count or 3) * plan.processes
        cores = os.cpu_count() or 1
        if parallel > cores:
            note_once(
                f"{parallel} trial processes may run at once on {cores} CPU cores; trials will compete for "
                "cores (lower parallelTrialCount or the replica count for faster trials)"
            )
        record = dataclasses.replace(record, output_dir=plan.output_dir)
        self._store_trial(optuna_trial, record, katib_trial=name)
        procs = TrialProcesses(plan, log_dir, self.workdir)
        self.store.set_trial_attrs(
            optuna_trial._trial_id, host=socket.gethostname(), processes=procs.identities()
        )
        rule = self.stopper.rule(self._finished()) if self.stopper is not None else None
        self.active[name] = _Active(
            record, optuna_trial, procs, MetricsTail(self.experiment, plan.metrics_path), rule
        )
        self.records[name] = record
        self._changed = True

    def _poll_trials(self) -> None:
        for active in list(self.active.values()):
            found = active.tail.read()
            if found and self._observe(active, found):
                continue
            if active.tail.error is not None:
                active.procs.kill()
                self._end_trial(
                    active, TRIAL_FAILED, "TrialFailed", f"metrics collection failed: {active.tail.error}"
                )
                continue
            codes = active.procs.poll()
            failed = {replica: code for replica, code in codes.items() if code != 0}
            primary = active.procs.primary
            if failed:
                active.procs.kill()
                self._end_trial(active, TRIAL_FAILED, "TrialFailed", failure_message(active.procs, failed))
            elif primary in codes:
                if active.primary_exit_at is None:
                    active.primary_exit_at = time.monotonic()
                everyone = len(codes) == len(active.procs.plan.replicas)
                if everyone or time.monotonic() - active.primary_exit_at > WORKER_GRACE_SECONDS:
                    active.procs.kill()
                    self._end_trial(active, None, "", "")

    def _observe(self, active: _Active, found: list[Observation]) -> bool:
        """Record new observations; True when medianstop stopped the trial on one of them."""
        active.observations.extend(found)
        self._update_running(active)
        if active.rule is None:
            return False
        for observation in found:
            if observation.name != self.experiment.objective.objective_metric_name:
                continue
            try:
                value = float(observation.value)
            except ValueError:
                continue
            if active.rule.observe(value):
                active.procs.kill()
                message = f"stopped by medianstop at objective value {observation.value}"
                self._end_trial(active, TRIAL_EARLY_STOPPED, "TrialEarlyStopped", message, read_rest=False)
                return True
        return False

    def _update_running(self, active: _Active) -> None:
        from experiments.collector import summarize

        active.record = dataclasses.replace(
            active.record,
            observations=tuple(active.observations),
            metrics=tuple(summarize(active.observations, self.names)),
        )
        self.records[active.record.name] = active.record
        self.store.set_trial_attrs(
            active.optuna_trial._trial_id, observations=observations_to_json(active.observations)
        )
        self._changed = True

    def _end_trial(
        self, active: _Active, condition: str | None, reason: str, message: str, read_rest=True
    ) -> None:
        from experiments.collector import observation_log

        if read_rest:
            active.observations.extend(active.tail.read(final=True))
        if condition is None:
            objective = self.experiment.objective.objective_metric_name
            if any(o.name == objective for o in active.observations):
                condition, reason, message = TRIAL_SUCCEEDED, "TrialSucceeded", "Trial has succeeded"
            else:
                condition, reason = TRIAL_METRICS_UNAVAILABLE, "MetricsUnavailable"
                # Katib's collector then stores one "unavailable" objective entry instead of the log, so
                # the additional metrics the trial did print read "unavailable" too (newObservationLog).
                active.observations = observation_log(active.observations, self.names)
                message = f"the trial exited 0 but reported no value of {objective!r} (metrics collector: {self.experiment.metrics_collector.kind})"
        del self.active[active.record.name]
        self._complete(active.optuna_trial, active.record, condition, reason, message, active.observations)

    def _complete(
        self, optuna_trial, record: TrialRecord, condition, reason, message, observations, **extra
    ) -> None:
        from experiments.collector import objective_value, summarize

        record = dataclasses.replace(
            record,
            condition=condition,
            reason=reason,
            message=message,
            observations=tuple(observations),
            metrics=tuple(summarize(observations, self.names)) if observations else (),
            completion_time=now(),
        )
        self.records[record.name] = record
        # Optuna refuses attribute writes on a finished trial: write everything, then tell.
        self.store.set_trial_attrs(
            optuna_trial._trial_id,
            condition=condition,
            reason=reason,
            message=message,
            observations=observations_to_json(observations),
            completion_time=record.completion_time,
            **extra,
        )
        value = (
            objective_value(record, self.experiment.objective)
            if condition in (TRIAL_SUCCEEDED, TRIAL_EARLY_STOPPED)
            else None
        )
        self.suggester.tell(self.study, optuna_trial, value, condition)
        best = optimal(self.experiment, self.records.values())
        if best is not None:
            best_value = objective_value(best, self.experiment.objective)
            self._set_experiment(
                best_trial=best.name, best_value=None if best_value is None else f"{best_value:g}"
            )
        self._changed = True

    def _store_trial(self, optuna_trial, record: TrialRecord, **extra) -> None:
        self.store.set_trial_attrs(
            optuna_trial._trial_id,
            parameters=dict(record.parameters),
            condition=record.condition,
            reason=record.reason,
            message=record.message,
            observations=[],
            start_time=record.start_time,
            log_dir=str(record.log_dir) if record.log_dir else None,
            output_dir=record.output_dir,
            **extra,
        )

    # -- budget and end ------------------------------------------------------------------------------
    def _finished(self) -> list[TrialRecord]:
        return [r for r in self.records.values() if r.condition in TRIAL_FINISHED]

    def _counted(self) -> int:
        """Trials that count toward maxTrialCount: all but those the runner's own interruption killed."""
        return sum(1 for r in self.records.values() if not is_interrupted(r))

    def _end(self) -> tuple[str, str, str] | None:
        from experiments.collector import goal_reached, objective_value

        exp = self.experiment
        if exp.objective.goal is not None:
            best = optimal(exp, self.records.values())
            value = objective_value(best, exp.objective) if best is not None else None
            if value is not None and goal_reached(value, exp.objective):
                return (
                    EXPERIMENT_SUCCEEDED,
                    REASON_GOAL_REACHED,
                    f"objective goal {exp.objective.goal:g} reached by {best.name} ({value:g})",
                )
        failed = sum(1 for r in self.records.values() if r.condition in FAILED_CONDITIONS)
        # Katib (status_util.go): failed + MetricsUnavailable, and never with zero failures (maxFailedTrialCount 0).
        if exp.max_failed_trial_count is not None and failed and failed >= exp.max_failed_trial_count:
            return (
                EXPERIMENT_FAILED,
                REASON_MAX_FAILED_TRIALS_REACHED,
                f"{failed} trial{'s' if failed != 1 else ''} failed or had no metrics "
                f"(maxFailedTrialCount {exp.max_failed_trial_count})",
            )
        finished = sum(1 for r in self._finished() if not is_interrupted(r))
        if exp.max_trial_count is not None and finished >= exp.max_trial_count and not self.active:
            return (
                EXPERIMENT_SUCCEEDED,
                REASON_MAX_TRIALS_REACHED,
                f"{finished} trials finished (maxTrialCount {exp.max_trial_count})",
            )
        return None

    def _finish(self, condition: str, reason: str, message: str) -> None:
        # Katib deletes the trials still running when an experiment ends (goal reached, too many failures).
        self._kill_active(TRIAL_KILLED, "TrialKilled", f"killed: the experiment ended ({reason})")
        self._set_experiment(
            condition=condition, reason=reason, message=message, completion_time=now(), runner=None
        )

    def _stop_all(self, why: str) -> None:
        self._kill_active(
            TRIAL_KILLED,
            REASON_KILLED,
            f"killed: {why}; resume runs a new trial in its place",
            interrupted=True,
        )
        self._set_experiment(
            condition=EXPERIMENT_FAILED,
            reason=REASON_KILLED,
            message=f"{why}; continue with `katib experiment resume {self.name}`",
            completion_time=now(),
            runner=None,
        )

    def _kill_active(self, condition: str, reason: str, message: str, **extra) -> None:
        for active in list(self.active.values()):
            active.procs.kill()
        for active in list(self.active.values()):
            active.observations.extend(active.tail.read(final=True))
            del self.active[active.record.name]
            self._complete(
                active.optuna_trial, active.record, condition, reason, message, active.observations, **extra
            )

    def _early_stopping(self):
        spec = self.experiment.early_stopping
        if spec is None:
            return None
        from experiments.backends.local._medianstop import make_early_stopping

        return make_early_stopping(spec, self.experiment.objective)

    # -- bookkeeping ---------------------------------------------------------------------------------
    def _set_experiment(self, **attrs: Any) -> None:
        attrs = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in attrs.items()}
        self._attrs.update(attrs)
        self.store.set_study_attrs(self.name, **attrs)
        self._changed = True

    def _heartbeat(self) -> None:
        if time.monotonic() - self._last_heartbeat >= HEARTBEAT_SECONDS:
            self._last_heartbeat = time.monotonic()
            identity = dict(self._attrs.get("runner") or {})
            identity["heartbeat"] = now().isoformat()
            self._set_experiment(runner=identity)

    def _report(self, progress: ProgressCallback | None, force: bool = False) -> None:
        if progress is None:
            return
        if force or self._changed or time.monotonic() - self._last_progress >= PROGRESS_SECONDS:
            self._changed = False
            self._last_progress = time.monotonic()
            progress(self.status())

    def _install_signal_handlers(self) -> dict:
        """Ctrl-C and SIGTERM only set a flag; the loop raises at its next safe point.

        An exception raised straight from a signal handler can land inside SQLAlchemy or subprocess code
        and leave a lock held, and the clean-up that follows (which writes to the same storage) would then
        hang instead of marking the running trials Killed.
        """
        self._interrupted: int | None = None
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum, frame):
            self._interrupted = signum

        return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _raise_if_interrupted(self) -> None:
        if self._interrupted == signal.SIGTERM:
            raise ExperimentInterrupted()
        if self._interrupted is not None:
            raise KeyboardInterrupt()

    @staticmethod
    def _hold_signals() -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _release_signals(held: dict) -> None:
        for sig, previous in held.items():
            signal.signal(sig, previous)

    @staticmethod
    def _restore_signal_handlers(previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
