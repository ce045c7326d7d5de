"""The one ranking of trials by the objective, with Katib's semantics. status, promote-best and compare use it.

Sources (kubeflow/katib v0.19): pkg/controller.v1beta1/trial/trial_controller_util.go (``getMetrics``:
the value a metricStrategy picks) and pkg/controller.v1beta1/experiment/util/status_util.go
(``currentOptimalTrial`` and the goal check).

    ranked = rank_trials(records, experiment.objective)   # best first; only trials Katib could pick
    best = optimal_trial(records, experiment.objective)   # == ranked[0] if ranked else None
    objective_value(best, experiment.objective)           # float by the metric strategy, or None
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from experiments.backends._protocol import (
    TRIAL_EARLY_STOPPED,
    TRIAL_METRICS_UNAVAILABLE,
    TRIAL_SUCCEEDED,
    TrialRecord,
)
from experiments.spec._model import Objective

__all__ = [
    "OBSERVED_CONDITIONS",
    "UNAVAILABLE",
    "goal_reached",
    "is_better",
    "objective_string",
    "objective_value",
    "optimal_trial",
    "rank_trials",
]

# pkg/controller.v1beta1/consts/const.go: UnavailableMetricValue.
UNAVAILABLE = "unavailable"

# Katib fills status.observation only when the job succeeded or the trial was early stopped, so only these
# trials can be optimal (MetricsUnavailable ones carry "unavailable" and are skipped by the value check).
OBSERVED_CONDITIONS = (TRIAL_SUCCEEDED, TRIAL_EARLY_STOPPED, TRIAL_METRICS_UNAVAILABLE)


def objective_string(trial: TrialRecord, objective: Objective) -> str:
    """Katib's ``getObjectiveMetricValue``: the value the metric strategy picks, falling back to latest.

    The string as the trial reported it, or ``UNAVAILABLE``.
    """
    from experiments.collector import summarize

    name = objective.objective_metric_name
    summary = trial.metric(name)
    if summary is None and trial.observations:
        summary = summarize(trial.observations, (name,))[0]
    if summary is None:
        return UNAVAILABLE
    strategy = objective.strategy_for(name)
    if strategy == "min":
        return summary.latest if summary.min == UNAVAILABLE else summary.min
    if strategy == "max":
        return summary.latest if summary.max == UNAVAILABLE else summary.max
    return summary.latest


def objective_value(trial: TrialRecord, objective: Objective) -> float | None:
    """The trial's objective value by the metric strategy (min / max / latest); None when unavailable."""
    from experiments.collector import parse_float

    value = objective_string(trial, objective)
    return None if value == UNAVAILABLE else parse_float(value)


def _rankable_value(trial: TrialRecord, objective: Objective) -> float | None:
    if trial.condition not in OBSERVED_CONDITIONS:
        return None
    value = objective_value(trial, objective)
    if value is None or math.isnan(value):
        return None
    return value


def is_better(value: float, than: float, objective: Objective) -> bool:
    """Strictly better by the objective's type: a tie is not better (Katib keeps the earlier trial)."""
    return value < than if objective.type == "minimize" else value > than


def rank_trials(trials: Sequence[TrialRecord], objective: Objective) -> list[TrialRecord]:
    """Trials Katib could name optimal, best first; ties keep the given (creation) order.

    Deviation from Katib: a trial whose objective value is not a number (``loss=nan``) is left out, so a
    diverged trial is never ranked, promoted or shown as best.
    """
    scored = [
        (value, index, trial)
        for index, trial in enumerate(trials)
        if (value := _rankable_value(trial, objective)) is not None
    ]
    sign = 1.0 if objective.type == "minimize" else -1.0
    scored.sort(key=lambda item: (sign * item[0], item[1]))
    return [trial for _, _, trial in scored]


def optimal_trial(trials: Sequence[TrialRecord], objective: Objective) -> TrialRecord | None:
    """Katib's ``currentOptimalTrial`` over trials in creation order: the head of ``rank_trials``."""
    ranked = rank_trials(trials, objective)
    return ranked[0] if ranked else None


def goal_reached(value: float | None, objective: Objective) -> bool:
    """Katib's goal check on the best value so far: minimize ``<= goal``, maximize ``>= goal``."""
    if objective.goal is None or value is None:
        return False
    if objective.type == "minimize":
        return value <= objective.goal
    return value >= objective.goal
