"""Trial bookkeeping: every write the local backend makes about a trial, in one place.

A Katib Trial is an Optuna trial whose user attributes hold what Katib keeps (name, assignments,
condition, observation log, times) plus what this machine needs to find its processes again. Each
objective observation is also an Optuna intermediate value (step = its 1-based index among the
objective's reports), so optuna-dashboard and ``optuna.visualization`` draw learning curves.
Used by the runner that drives trials and by reconcile, which records trials a dead runner left.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import Any

from experiments.backends._protocol import (
    TRIAL_EARLY_STOPPED,
    TRIAL_SUCCEEDED,
    Observation,
    TrialRecord,
)
from experiments.backends.local._store import Store, now, observations_to_json
from experiments.spec import Experiment


def label_study(study, experiment: Experiment) -> None:
    """Katib's names on the Optuna study: its objective metric and parameters (old studies get them too)."""
    from optuna.exceptions import ExperimentalWarning

    objective = experiment.objective
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", ExperimentalWarning
        )  # set_metric_names is public, marked experimental
        if study.metric_names != [objective.objective_metric_name]:
            study.set_metric_names([objective.objective_metric_name])
    names = {
        "katib_objective": objective.objective_metric_name,
        "katib_additional_metrics": list(objective.additional_metric_names),
        "katib_parameters": [p.name for p in experiment.parameters],
    }
    for key, value in names.items():
        if study.user_attrs.get(key) != value:
            study.set_user_attr(key, value)


def objective_steps(experiment: Experiment, observations: Sequence[Observation]) -> list[tuple[int, float]]:
    """(step, value) of each objective report that is a number, step counting every objective report."""
    objective = experiment.objective.objective_metric_name
    out = []
    step = 0
    for observation in observations:
        if observation.name != objective:
            continue
        step += 1
        try:
            value = float(observation.value)
        except ValueError:  # Katib's "unavailable"
            continue
        if not math.isnan(value):
            out.append((step, value))
    return out


class TrialBook:
    """Writes trials of one experiment to the store and keeps their records in memory."""

    def __init__(self, store: Store, experiment: Experiment, study, suggester, names: Sequence[str]):
        self.store = store
        self.experiment = experiment
        self.study = study
        self.suggester = suggester
        self.names = tuple(names)
        self.records: dict[str, TrialRecord] = {}
        self._reported: dict[int, int] = {}  # trial id -> intermediate values written
        self._study_id = store.storage.get_study_id_from_name(study.study_name)

    def trial_id(self, number: int) -> int:
        return self.store.storage.get_trial_id_from_study_id_trial_number(self._study_id, number)

    def begin(self, trial_id: int, record: TrialRecord, **extra: Any) -> None:
        """A new Running trial: its record before any process starts (so a crash leaves it findable)."""
        self.records[record.name] = record
        self.store.set_trial_attrs(
            trial_id,
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

    def observe(self, trial_id: int, record: TrialRecord, observations: Sequence[Observation]) -> TrialRecord:
        """A running trial's observation log so far: stored, summarised, reported to Optuna."""
        from experiments.collector import summarize

        record = dataclasses.replace(
            record,
            observations=tuple(observations),
            metrics=tuple(summarize(list(observations), self.names)),
        )
        self.records[record.name] = record
        self.store.set_trial_attrs(trial_id, observations=observations_to_json(observations))
        self.report(trial_id, observations)
        return record

    def report(self, trial_id: int, observations: Sequence[Observation]) -> None:
        steps = objective_steps(self.experiment, observations)
        done = self._reported.get(trial_id, 0)
        for step, value in steps[done:]:
            # The storage's own call (what Trial.report does), also for trials adopted after a crash.
            self.store.storage.set_trial_intermediate_value(trial_id, step, value)
        self._reported[trial_id] = len(steps)

    def complete(
        self,
        trial_id: int,
        number: int,
        record: TrialRecord,
        condition: str,
        reason: str,
        message: str,
        observations: Sequence[Observation],
        **extra: Any,
    ) -> TrialRecord:
        """The trial ended: its final record, then Optuna's state (written last: readers trust it)."""
        from experiments.collector import objective_value, summarize

        record = dataclasses.replace(
            record,
            condition=condition,
            reason=reason,
            message=message,
            observations=tuple(observations),
            metrics=tuple(summarize(list(observations), self.names)) if observations else (),
            completion_time=record.completion_time or now(),
        )
        self.records[record.name] = record
        self.report(trial_id, observations)
        # Optuna refuses attribute writes on a finished trial: write everything, then tell.
        self.store.set_trial_attrs(
            trial_id,
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
        self.suggester.tell(self.study, number, value, condition)
        return record
