"""Katib's objects (kubeflow-katib SDK models) -> the protocol's records, as pure functions.

An Experiment's condition is the last of its ``status.conditions`` whose status is "True" (Katib appends
Created, Running, then Succeeded / Failed and flips Running to "False"; a resume appends Restarting). A
Trial's is found in the order Katib's ``updateTrialsSummary`` tests them (status_util.go): Killed, Failed,
Succeeded, EarlyStopped, Running, MetricsUnavailable, else Created. The optimal trial is the one ranking's
(``experiments.ranking``), computed from the trials, as the local backend does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from experiments.backends._protocol import (
    EXPERIMENT_CREATED,
    TRIAL_CREATED,
    TRIAL_EARLY_STOPPED,
    TRIAL_FAILED,
    TRIAL_KILLED,
    TRIAL_METRICS_UNAVAILABLE,
    TRIAL_RUNNING,
    TRIAL_SUCCEEDED,
    ExperimentStatus,
    ExperimentSummary,
    MetricSummary,
    Observation,
    TrialRecord,
)
from experiments.spec import Experiment

EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"
_TRIAL_ORDER = (
    TRIAL_KILLED,
    TRIAL_FAILED,
    TRIAL_SUCCEEDED,
    TRIAL_EARLY_STOPPED,
    TRIAL_RUNNING,
    TRIAL_METRICS_UNAVAILABLE,
)


def _is_true(condition: Any) -> bool:
    return str(getattr(condition, "status", "")).lower() == "true"


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def experiment_condition(status: Any) -> tuple[str, str, str]:
    """(condition, reason, message) of an ``V1beta1ExperimentStatus`` (None: just created)."""
    conditions = [c for c in (getattr(status, "conditions", None) or []) if _is_true(c)]
    if not conditions:
        return EXPERIMENT_CREATED, "", ""
    last = conditions[-1]
    return str(last.type), str(last.reason or ""), str(last.message or "")


def trial_condition(status: Any) -> tuple[str, str, str]:
    """(condition, reason, message) of a ``V1beta1TrialStatus``."""
    true = {str(c.type): c for c in (getattr(status, "conditions", None) or []) if _is_true(c)}
    for kind in _TRIAL_ORDER:
        if kind in true:
            return kind, str(true[kind].reason or ""), str(true[kind].message or "")
    created = true.get(TRIAL_CREATED)
    if created is not None:
        return TRIAL_CREATED, str(created.reason or ""), str(created.message or "")
    return TRIAL_CREATED, "", ""


def metric_summaries(observation: Any) -> tuple[MetricSummary, ...]:
    """``status.observation.metrics`` (V1beta1Metric: name, min, max, latest, all strings)."""
    return tuple(
        MetricSummary(name=str(m.name), min=str(m.min), max=str(m.max), latest=str(m.latest))
        for m in (getattr(observation, "metrics", None) or [])
    )


def observations_from_logs(metric_logs: Sequence[Any]) -> tuple[Observation, ...]:
    """The db-manager's ``MetricLog`` entries (``get_trial_metrics``: time_stamp, metric.name, metric.value)."""
    from experiments.collector import ZERO_TIME, parse_rfc3339

    out = []
    for log in metric_logs:
        stamp = parse_rfc3339(log.time_stamp) if log.time_stamp else None
        out.append(
            Observation(
                name=log.metric.name, value=log.metric.value, timestamp=None if stamp == ZERO_TIME else stamp
            )
        )
    return tuple(out)


def trial_record(
    trial: Any,
    output_dir: str | None = None,
    observations: Sequence[Observation] = (),
) -> TrialRecord:
    """A ``V1beta1Trial`` as the protocol's record (parameters and metric values stay Katib's strings)."""
    status = trial.status
    condition, reason, message = trial_condition(status)
    assignments = (trial.spec.parameter_assignments or []) if trial.spec is not None else []
    return TrialRecord(
        name=str(trial.metadata.name),
        parameters={str(a.name): str(a.value) for a in assignments},
        condition=condition,
        reason=reason,
        message=message,
        metrics=metric_summaries(getattr(status, "observation", None)),
        observations=tuple(observations),
        start_time=_utc(getattr(status, "start_time", None)),
        completion_time=_utc(getattr(status, "completion_time", None)),
        output_dir=output_dir,
    )


def creation_order(trials: Sequence[Any]) -> list[Any]:
    """Trials in the order Katib created them (ties in the one ranking keep the earlier trial)."""
    far_past = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(
        trials, key=lambda t: (_utc(t.metadata.creation_timestamp) or far_past, str(t.metadata.name))
    )


def experiment_status(obj: Any, experiment: Experiment, records: Sequence[TrialRecord]) -> ExperimentStatus:
    """A ``V1beta1Experiment`` and its trials' records as the protocol's status."""
    from experiments.ranking import optimal_trial

    status = obj.status
    condition, reason, message = experiment_condition(status)
    records = tuple(records)
    return ExperimentStatus(
        name=str(obj.metadata.name),
        condition=condition,
        reason=reason,
        message=message,
        trials=records,
        optimal_trial=optimal_trial(records, experiment.objective),
        start_time=_utc(getattr(status, "start_time", None)) or _utc(obj.metadata.creation_timestamp),
        completion_time=_utc(getattr(status, "completion_time", None)),
        max_trial_count=experiment.max_trial_count,
        backend="cluster",
    )


def summary(obj: Any, experiment: Experiment | None) -> ExperimentSummary:
    """One row of ``list``: counters from Katib's status, the best value of its currentOptimalTrial."""
    status = obj.status
    condition, reason, _ = experiment_condition(status)
    best = None
    optimal = getattr(status, "current_optimal_trial", None)
    if experiment is not None and optimal is not None and getattr(optimal, "best_trial_name", None):
        from experiments.ranking import UNAVAILABLE, objective_string

        record = TrialRecord(
            name=optimal.best_trial_name,
            parameters={},
            condition=TRIAL_SUCCEEDED,
            metrics=metric_summaries(optimal.observation),
        )
        value = objective_string(record, experiment.objective)
        best = None if value == UNAVAILABLE else value
    namespace = str(obj.metadata.namespace or "")
    return ExperimentSummary(
        name=str(obj.metadata.name),
        condition=condition,
        reason=reason,
        trials=int(getattr(status, "trials", None) or 0),
        succeeded=int(getattr(status, "trials_succeeded", None) or 0),
        best_value=best,
        created=_utc(obj.metadata.creation_timestamp),
        backend="cluster",
        extra={"namespace": namespace} if namespace else {},
    )
