"""Katib's ``medianstop`` early stopping, with Katib's exact semantics.

Sources (kubeflow/katib v0.19): pkg/earlystopping/v1beta1/medianstop/service.py (the rule) and
cmd/metricscollector/v1beta1/file-metricscollector/main.go (how a running trial applies it).

- The "median" is computed once at least ``min_trials_required`` (default 3) trials have Succeeded: for each
  of them, the average of its first ``start_step`` (default 4) objective values, ordered by timestamp; the
  median is the plain MEAN of those averages (Katib's name, Katib's arithmetic).
- Settings arrive parsed by the spec (``experiments.spec.MedianStopSettings``); nothing is re-validated here.
- Rules are handed to a trial when it starts (:meth:`MedianStop.rule`). In the trial, the rule is checked
  exactly once, at the ``start_step``-th report of the objective, on the best value so far of that trial:
  maximize stops when it is lower than the median, minimize when it is greater.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from experiments.backends._protocol import TRIAL_SUCCEEDED, TrialRecord
from experiments.collector import ZERO_TIME, parse_float
from experiments.spec._errors import InvalidExperimentError
from experiments.spec._model import EarlyStopping, Objective
from experiments.spec._settings import MedianStopSettings, parse_early_stopping_spec

__all__ = ["EARLY_STOPPING", "MedianStop", "StopRule", "make_early_stopping"]


@dataclass
class StopRule:
    """One trial's medianstop rule; feed it every reported objective value in order."""

    median: float
    start_step: int
    maximize: bool
    _reports: int = field(default=0, init=False)
    _best: float | None = field(default=None, init=False)

    def observe(self, value: float) -> bool:
        """True exactly when this report is the ``start_step``-th and the best value so far is worse than the
        median; every other report returns False (the rule is applied once, then forgotten, as in Katib)."""
        if self._best is None or (value > self._best if self.maximize else value < self._best):
            self._best = value
        self._reports += 1
        if self._reports != self.start_step:
            return False
        return self._best < self.median if self.maximize else self._best > self.median


class MedianStop:
    """Katib's medianstop service for one experiment."""

    def __init__(self, settings: MedianStopSettings, objective: Objective) -> None:
        self.min_trials_required = settings.min_trials_required
        self.start_step = settings.start_step
        self.objective = objective
        self.maximize = objective.type == "maximize"

    def trial_average(self, trial: TrialRecord) -> float | None:
        """The average of the trial's first ``start_step`` objective values in time order (None: no values)."""
        name = self.objective.objective_metric_name
        logs = sorted(
            (o for o in trial.observations if o.name == name), key=lambda o: o.timestamp or ZERO_TIME
        )  # sorted() is stable: equal (or missing) timestamps keep the log order, as Katib's DB query does
        values = [v for v in (parse_float(o.value) for o in logs) if v is not None][: self.start_step]
        return sum(values) / len(values) if values else None

    def median(self, finished_trials: Sequence[TrialRecord]) -> float | None:
        averages = [
            avg
            for avg in (self.trial_average(t) for t in finished_trials if t.condition == TRIAL_SUCCEEDED)
            if avg is not None
        ]
        if len(averages) < self.min_trials_required:
            return None
        return sum(averages) / len(averages)

    def rule(self, finished_trials: Sequence[TrialRecord]) -> StopRule | None:
        """The rule for a trial starting now, or None while fewer than ``min_trials_required`` have Succeeded."""
        median = self.median(finished_trials)
        if median is None:
            return None
        return StopRule(median=median, start_step=self.start_step, maximize=self.maximize)


EARLY_STOPPING = {"medianstop": MedianStop}


def make_early_stopping(
    early_stopping: EarlyStopping | MedianStopSettings, objective: Objective
) -> MedianStop:
    """The early-stopping service for the spec's typed settings (an ``earlyStopping`` block is parsed by the
    spec first, which raises :class:`InvalidExperimentError` with its problems: the one validation)."""
    settings = early_stopping
    if isinstance(early_stopping, EarlyStopping):
        parsed, problems = parse_early_stopping_spec(early_stopping)
        if problems:
            raise InvalidExperimentError("earlyStopping", problems)
        settings = parsed
    return EARLY_STOPPING[settings.name](settings, objective)
