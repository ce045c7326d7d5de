"""The trials one runner drives: start (everything prepared before a process runs), adopt, poll, end.

Split from the runner's loop along their seam: the loop decides when to ask for a trial and when the
experiment ends; this module runs each trial from its first process to its last record.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import socket
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.backends._protocol import (
    REASON_KILLED,
    TRIAL_EARLY_STOPPED,
    TRIAL_FAILED,
    TRIAL_FINISHED,
    TRIAL_KILLED,
    TRIAL_RUNNING,
    Observation,
    TrialRecord,
)
from experiments.backends.local._book import TrialBook
from experiments.backends.local._outcome import (
    Outcome,
    deadline_outcome,
    failure_message,
    succeeded_or_unavailable,
)
from experiments.backends.local._procs import TrialProcesses, TrialStartError
from experiments.backends.local._reconcile import WORKER_GRACE_SECONDS
from experiments.backends.local._store import Store, now, to_record
from experiments.backends.local._trial import MetricsTail, note_once, plan_trial
from experiments.backends.local._warm import WarmTrainer
from experiments.errors import KatibSuiteError
from experiments.spec import Experiment

log = logging.getLogger("experiments.backends.local")


def new_trial_name(experiment: str) -> str:
    return f"{experiment}-{''.join(random.choices(string.ascii_lowercase, k=8))}"


@dataclass
class _Active:
    record: TrialRecord
    trial_id: int
    number: int
    procs: TrialProcesses
    tail: MetricsTail
    rule: Any = None
    observations: list[Observation] = field(default_factory=list)
    primary_exit_at: float | None = None  # epoch seconds
    deadline_at: float | None = None  # epoch seconds: start + activeDeadlineSeconds
    deadline_seconds: int = 0
    kind: str = "PyTorchJob"


class ActiveTrials:
    """The running trials of one experiment, by name, and everything that happens to them."""

    def __init__(
        self,
        store: Store,
        name: str,
        experiment: Experiment,
        workdir: Path,
        book: TrialBook,
        stopper,
        on_complete: Callable[[], None],
        warm: WarmTrainer | None = None,
        interrupted: Callable[[], None] = lambda: None,
    ):
        self.store = store
        self.name = name
        self.experiment = experiment
        self.workdir = workdir
        self.book = book
        self.names = book.names
        self.stopper = stopper
        self.on_complete = on_complete
        self.warm = warm
        self.interrupted = interrupted
        self.active: dict[str, _Active] = {}
        self.changed = True

    @property
    def records(self) -> dict[str, TrialRecord]:
        return self.book.records

    def finished(self) -> list[TrialRecord]:
        return [r for r in self.records.values() if r.condition in TRIAL_FINISHED]

    def start(self, number: int, assignments: dict[str, str]) -> None:
        from experiments.spec import render_trial

        name = new_trial_name(self.name)
        while name in self.records:
            name = new_trial_name(self.name)
        log_dir = self.workdir / ".katib" / self.name / name
        trial_id = self.book.trial_id(number)
        record = TrialRecord(
            name, assignments, TRIAL_RUNNING, "TrialRunning", "", start_time=now(), log_dir=log_dir
        )
        namespace = self.experiment.namespace or "default"
        try:
            rendered = render_trial(self.experiment, assignments, name, namespace=namespace)
            plan = plan_trial(self.experiment, rendered, name, log_dir)
            if self.warm is not None:
                plan = self.warm.serve(plan, self.interrupted)
        except KatibSuiteError as error:
            self.book.begin(trial_id, record, katib_trial=name)
            self.complete(
                trial_id,
                number,
                record,
                Outcome(TRIAL_FAILED, "TrialFailed", f"cannot start the trial: {error}", ()),
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
        seconds = plan.active_deadline_seconds
        deadline_at = time.time() + seconds if seconds else None
        kind = str(rendered.get("kind") or "Job")
        # Everything a later reader needs to find these processes again, written before any starts.
        self.book.begin(
            trial_id,
            record,
            katib_trial=name,
            host=socket.gethostname(),
            replicas=[r.name for r in plan.replicas],
            primary=plan.primary,
            metrics_path=str(plan.metrics_path),
            kind=kind,
            deadline_at=deadline_at,
            active_deadline_seconds=seconds,
        )
        try:
            procs = TrialProcesses.start(plan, log_dir, self.workdir)
        except TrialStartError as error:
            outcome = Outcome(TRIAL_FAILED, "TrialFailed", f"cannot start the trial: {error}", ())
            self.complete(trial_id, number, record, outcome)
            return
        self.store.set_trial_attrs(trial_id, processes=procs.identities())
        rule = self.stopper.rule(self.finished()) if self.stopper is not None else None
        tail = MetricsTail(self.experiment, plan.metrics_path)
        self.active[name] = _Active(
            record,
            trial_id,
            number,
            procs,
            tail,
            rule,
            deadline_at=deadline_at,
            deadline_seconds=seconds or 0,
            kind=kind,
        )
        self.changed = True

    def adopt(self, trial, finding) -> None:
        """Watch to its end a trial a runner that is gone started (its processes still run)."""
        attrs = trial.user_attrs
        record = self.records.get(attrs["katib_trial"]) or to_record(trial, self.names)
        metrics_path = Path(attrs.get("metrics_path") or finding.procs.log_path(finding.procs.primary))
        rule = self.stopper.rule(self.finished()) if self.stopper is not None else None
        self.active[record.name] = _Active(
            record,
            self.book.trial_id(trial.number),
            trial.number,
            finding.procs,
            MetricsTail(self.experiment, metrics_path),
            rule,
            primary_exit_at=finding.primary_exited_at,
            deadline_at=attrs.get("deadline_at"),
            deadline_seconds=int(attrs.get("active_deadline_seconds") or 0),
            kind=attrs.get("kind", "PyTorchJob"),
        )
        log.info("adopted trial %s: its processes outlived the previous runner", record.name)
        self.changed = True

    def poll(self) -> None:
        for active in list(self.active.values()):
            found = active.tail.read()
            if found and self.observe(active, found):
                continue
            procs = active.procs
            if active.tail.error is not None:
                procs.kill()
                self.end(active, self.failed(active, f"metrics collection failed: {active.tail.error}"))
                continue
            codes = procs.poll()
            failed = {replica: code for replica, code in codes.items() if code != 0}
            if failed:
                procs.kill()
                message = failure_message(procs.primary, failed, procs.log_path)
                self.end(active, self.failed(active, message))
            elif active.deadline_at is not None and time.time() > active.deadline_at:
                procs.kill()
                active.observations.extend(active.tail.read(final=True))
                outcome = deadline_outcome(
                    active.kind, active.record.name, active.deadline_seconds, active.observations
                )
                self.end(active, outcome, read_rest=False)
            elif procs.primary in codes:
                if active.primary_exit_at is None:
                    active.primary_exit_at = time.time()
                everyone = len(codes) == len(procs.replicas)
                if everyone or time.time() - active.primary_exit_at > WORKER_GRACE_SECONDS:
                    procs.kill()
                    self.end(active, None)
            elif not procs.procs and not any(procs.state(r).running for r in procs.replicas):
                # Adopted, and its processes ended without an exit code: someone killed them.
                procs.kill()
                self.end(
                    active,
                    Outcome(
                        TRIAL_KILLED,
                        REASON_KILLED,
                        "its processes were stopped without an exit code (killed); "
                        "resume runs a new trial in its place",
                        (),
                    ),
                    interrupted=True,
                )

    def failed(self, active: _Active, message: str) -> Outcome:
        return Outcome(TRIAL_FAILED, "TrialFailed", message, ())

    def observe(self, active: _Active, found: list[Observation]) -> bool:
        """Record new observations; True when medianstop stopped the trial on one of them."""
        active.observations.extend(found)
        active.record = self.book.observe(active.trial_id, active.record, active.observations)
        self.changed = True
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
                outcome = Outcome(TRIAL_EARLY_STOPPED, "TrialEarlyStopped", message, ())
                self.end(active, outcome, read_rest=False)
                return True
        return False

    def end(self, active: _Active, outcome: Outcome | None, read_rest=True, **extra) -> None:
        if read_rest:
            active.observations.extend(active.tail.read(final=True))
        if outcome is None:
            outcome = succeeded_or_unavailable(self.experiment, self.names, active.observations)
        else:
            outcome = dataclasses.replace(outcome, observations=tuple(active.observations))
        del self.active[active.record.name]
        self.complete(active.trial_id, active.number, active.record, outcome, **extra)

    def complete(self, trial_id: int, number: int, record: TrialRecord, outcome: Outcome, **extra) -> None:
        try:
            self.book.complete(
                trial_id,
                number,
                record,
                outcome.condition,
                outcome.reason,
                outcome.message,
                outcome.observations,
                **extra,
            )
        except RuntimeError:
            # Optuna's UpdateFinishedTrialError: a reader (`status`) recorded this adopted trial as it
            # ended, in the instant before this runner took over; its record stands.
            trial = self.store.storage.get_trial(trial_id)
            self.records[record.name] = to_record(trial, self.names)
        self.changed = True
        self.on_complete()

    def kill_all(self, condition: str, reason: str, message: str, **extra) -> None:
        for active in list(self.active.values()):
            active.procs.kill()
        for active in list(self.active.values()):
            self.end(active, Outcome(condition, reason, message, ()), **extra)
