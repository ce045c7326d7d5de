"""The local experiment loop: ask for assignments, run trials as processes, collect, tell, end as Katib ends.

It runs in the caller's process (``handle.wait()``) and is the storage's only writer. Ctrl-C or
SIGTERM stops every running trial's process tree, marks those trials Killed and leaves the experiment
resumable; trials that already finished are kept as they are. A runner that was SIGKILLed leaves its
trials running: the next one adopts them (``_reconcile``). Every write about a trial is ``_book``'s,
how a trial ended ``_outcome``'s, its processes ``_procs``'.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
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
    TRIAL_FAILED,
    TRIAL_FINISHED,
    TRIAL_KILLED,
    TRIAL_METRICS_UNAVAILABLE,
    ExperimentStatus,
    ProgressCallback,
    TrialRecord,
)
from experiments.backends.local._book import TrialBook, label_study
from experiments.backends.local._reconcile import settle
from experiments.backends.local._signals import (
    ExperimentInterrupted,
    InterruptFlag,
    hold_signals,
    release_signals,
)
from experiments.backends.local._store import Store, _parse_time, now, runner_identity, to_record
from experiments.backends.local._trials import ActiveTrials
from experiments.backends.local._warm import WarmTrainer
from experiments.spec import Experiment

log = logging.getLogger("experiments.backends.local")

POLL_SECONDS = 0.05
PROGRESS_SECONDS = 1.0
HEARTBEAT_SECONDS = 10.0
FAILED_CONDITIONS = (TRIAL_FAILED, TRIAL_METRICS_UNAVAILABLE)

__all__ = ["ExperimentInterrupted", "Runner", "build_status", "metric_names", "optimal"]


def metric_names(experiment: Experiment) -> tuple[str, ...]:
    from experiments.collector import metric_names as collector_metric_names  # the one definition

    return collector_metric_names(experiment.objective)


def is_interrupted(record: TrialRecord, attrs: Mapping[str, Any] | None = None) -> bool:
    """Killed because the runner stopped (not the trial's doing): resume runs a replacement."""
    return record.condition == TRIAL_KILLED and record.reason == REASON_KILLED


def optimal(experiment: Experiment, records) -> TrialRecord | None:
    from experiments.collector import optimal_trial

    # Katib picks the optimal trial among finished trials with an observation (the collector filters).
    return optimal_trial(list(records), experiment.objective)


def build_status(store: Store, name: str, experiment: Experiment, records, attrs) -> ExperimentStatus:
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


class Runner:
    def __init__(self, store: Store, name: str, experiment: Experiment, workdir: Path):
        self.store = store
        self.name = name
        self.experiment = experiment
        self.workdir = workdir
        self.names = metric_names(experiment)
        self.suggestion_end = False
        self._last_progress = 0.0
        self._last_heartbeat = 0.0
        self._changed = True
        self._attrs: dict[str, Any] = {}
        self._flag = InterruptFlag()
        self.book: TrialBook | None = None
        self.trials: ActiveTrials | None = None

    @property
    def records(self) -> dict[str, TrialRecord]:
        return self.book.records if self.book is not None else {}

    @property
    def active(self) -> dict:
        return self.trials.active if self.trials is not None else {}

    # -- the loop ------------------------------------------------------------------------------------
    def run(self, progress: ProgressCallback | None = None, timeout: float | None = None) -> ExperimentStatus:
        from experiments.backends.local._suggest import Suggester

        self.suggester = Suggester(self.experiment)
        self.stopper = self._early_stopping()
        self.study = self.store.load_study(self.name, sampler=self.suggester.sampler)
        label_study(self.study, self.experiment)
        self.book = TrialBook(self.store, self.experiment, self.study, self.suggester, self.names)
        self.warm = WarmTrainer(self.workdir / ".katib" / self.name, self.workdir)
        self.trials = ActiveTrials(
            self.store,
            self.name,
            self.experiment,
            self.workdir,
            self.book,
            self.stopper,
            self._on_complete,
            warm=self.warm,
            interrupted=self._flag.raise_if_set,
        )
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
        self._flag.install()
        try:
            # A single writer: whatever is unfinished now was left by a runner that is gone.
            live = settle(self.store, self.name, self.experiment, self.study)
            self.book.records.update(
                (t.user_attrs["katib_trial"], to_record(t, self.names))
                for t in self.store.frozen_trials(self.name)
            )
            for trial, finding in live:
                self.trials.adopt(trial, finding)
            while True:
                self._flag.raise_if_set()
                self.trials.poll()
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
                self._flag.raise_if_set()
        except KeyboardInterrupt as interrupt:
            signal_name = "SIGTERM" if isinstance(interrupt, ExperimentInterrupted) else "Ctrl-C (SIGINT)"
            held = hold_signals()
            try:
                self._stop_all(f"interrupted by {signal_name}")
            finally:
                release_signals(held)
            self._report(progress, force=True)
            raise
        except Exception as error:
            # Whatever broke (the storage, a bug), no trial process may outlive the runner unrecorded.
            for active in self.active.values():
                active.procs.kill()
            try:
                self._stop_all(f"the runner failed ({type(error).__name__}: {error})")
            except Exception:  # the storage itself is what failed: the next reader reconciles
                pass
            raise
        finally:
            self.warm.stop()
            self._flag.restore()
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
            self.trials.start(optuna_trial.number, {k: str(v) for k, v in assignments.items()})

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
        self.trials.kill_all(TRIAL_KILLED, "TrialKilled", f"killed: the experiment ended ({reason})")
        self._set_experiment(
            condition=condition, reason=reason, message=message, completion_time=now(), runner=None
        )

    def _stop_all(self, why: str) -> None:
        self.trials.kill_all(
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

    def _early_stopping(self):
        spec = self.experiment.early_stopping
        if spec is None:
            return None
        from experiments.backends.local._medianstop import make_early_stopping

        return make_early_stopping(spec, self.experiment.objective)

    def _on_complete(self) -> None:
        from experiments.collector import objective_value

        best = optimal(self.experiment, self.records.values())
        if best is not None:
            best_value = objective_value(best, self.experiment.objective)
            self._set_experiment(
                best_trial=best.name, best_value=None if best_value is None else f"{best_value:g}"
            )
        self._changed = True

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
        if self.trials is not None and self.trials.changed:
            self.trials.changed, self._changed = False, True
        if force or self._changed or time.monotonic() - self._last_progress >= PROGRESS_SECONDS:
            self._changed = False
            self._last_progress = time.monotonic()
            progress(self.status())
