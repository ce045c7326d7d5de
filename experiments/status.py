"""Katib-shaped documents from backend records: what ``kubectl get experiment -o yaml`` would show.

Field names and the ``omitempty`` rules follow kubeflow/katib
``pkg/apis/controller/experiments/v1beta1/experiment_types.go`` (ExperimentStatus, OptimalTrial,
ExperimentCondition), and the trial bucketing follows ``experiment/util/status_util.go``
(``updateTrialsSummary``): Killed, Failed, Succeeded, EarlyStopped, Running, MetricsUnavailable, else
Pending. So a script that reads ``.status`` of a cluster Experiment reads ours unchanged: an empty list
or a zero counter is absent, exactly as the Go ``omitempty`` tag drops it.

Everything here is pure: records in, plain dicts out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from experiments.backends._protocol import (
    EXPERIMENT_CREATED,
    EXPERIMENT_FAILED,
    EXPERIMENT_RESTARTING,
    EXPERIMENT_RUNNING,
    EXPERIMENT_SUCCEEDED,
    TRIAL_CREATED,
    TRIAL_EARLY_STOPPED,
    TRIAL_FAILED,
    TRIAL_FINISHED,
    TRIAL_KILLED,
    TRIAL_METRICS_UNAVAILABLE,
    TRIAL_RUNNING,
    TRIAL_SUCCEEDED,
    ExperimentStatus,
    MetricSummary,
    TrialRecord,
)

API_VERSION = "kubeflow.org/v1beta1"
EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"

# Condition messages and reasons Katib's controller writes (status_util.go, experiment_controller.go).
_CREATED = ("ExperimentCreated", "Experiment is created")
_RUNNING = ("ExperimentRunning", "Experiment is running")
_RESTARTING = ("ExperimentRestarting", "Experiment is restarting")
# Katib's controller writes reason "ExperimentFailed" when maxFailedTrialCount is reached; backends
# record the more specific name, which is mapped back here so ``.status`` reads as Katib's.
_KATIB_REASONS = {"ExperimentMaxFailedTrialsReached": "ExperimentFailed"}
_END_MESSAGES = {
    "ExperimentGoalReached": "Experiment has succeeded because Objective goal has reached",
    "ExperimentMaxTrialsReached": "Experiment has succeeded because max trial count has reached",
    "ExperimentSuggestionEndReached": "Experiment has succeeded because suggestion service has reached the end",
    "ExperimentFailed": "Experiment has failed because max failed count has reached",
    "ExperimentMaxFailedTrialsReached": "Experiment has failed because max failed count has reached",
}

# status field -> trial condition, in the order updateTrialsSummary tests them.
_TRIAL_LISTS = (
    ("killedTrialList", "trialsKilled", TRIAL_KILLED),
    ("failedTrialList", "trialsFailed", TRIAL_FAILED),
    ("succeededTrialList", "trialsSucceeded", TRIAL_SUCCEEDED),
    ("earlyStoppedTrialList", "trialsEarlyStopped", TRIAL_EARLY_STOPPED),
    ("runningTrialList", "trialsRunning", TRIAL_RUNNING),
    ("metricsUnavailableTrialList", "trialMetricsUnavailable", TRIAL_METRICS_UNAVAILABLE),
)


def rfc3339(moment: datetime | None) -> str | None:
    """metav1.Time's JSON form: UTC, whole seconds, ``Z``. A naive datetime is taken as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _metric(summary: MetricSummary) -> dict[str, str]:
    return {"name": summary.name, "min": summary.min, "max": summary.max, "latest": summary.latest}


def _assignments(parameters: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "value": str(value)} for name, value in parameters.items()]


def _condition(kind: str, status: str, reason: str, message: str, when: datetime | None) -> dict[str, Any]:
    stamp = rfc3339(when)
    condition: dict[str, Any] = {"type": kind, "status": status}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    if stamp:
        condition["lastUpdateTime"] = stamp
        condition["lastTransitionTime"] = stamp
    return condition


def experiment_conditions(status: ExperimentStatus, now: datetime | None = None) -> list[dict[str, Any]]:
    """The condition history Katib's controller leaves behind for an experiment in this state.

    Katib appends Created, then Running; on completion it flips Running to False and appends
    Succeeded or Failed (util.go ``MarkExperimentStatusSucceeded``/``Failed``). Restarting (a resume)
    replaces the terminal condition until the experiment runs again.
    """
    start = status.start_time or now
    conditions = [_condition(EXPERIMENT_CREATED, "True", *_CREATED, start)]
    if status.condition == EXPERIMENT_CREATED:
        return conditions
    if status.condition == EXPERIMENT_RESTARTING:
        conditions.append(_condition(EXPERIMENT_RUNNING, "False", *_RUNNING, start))
        reason = status.reason or _RESTARTING[0]
        conditions.append(
            _condition(EXPERIMENT_RESTARTING, "True", reason, status.message or _RESTARTING[1], now)
        )
        return conditions
    if status.condition in (EXPERIMENT_SUCCEEDED, EXPERIMENT_FAILED):
        end = status.completion_time or now
        conditions.append(_condition(EXPERIMENT_RUNNING, "False", *_RUNNING, end))
        # Katib's own message for the ends it knows; the backend's for local-only ends (ExperimentKilled).
        message = _END_MESSAGES.get(status.reason) or status.message
        reason = _KATIB_REASONS.get(status.reason, status.reason)
        conditions.append(_condition(status.condition, "True", reason, message, end))
        return conditions
    # Running, and anything a newer backend might add: report it as the current condition.
    reason = status.reason or _RUNNING[0]
    message = _RUNNING[1] if status.condition == EXPERIMENT_RUNNING else status.message
    conditions.append(_condition(status.condition, "True", reason, message, now or start))
    return conditions


def optimal_trial(trial: TrialRecord | None) -> dict[str, Any]:
    """``currentOptimalTrial``: a non-pointer struct in Go, so it is always present (``observation: {}``)."""
    if trial is None:
        return {"observation": {}}
    observation: dict[str, Any] = {}
    if trial.metrics:
        observation["metrics"] = [_metric(m) for m in trial.metrics]
    document: dict[str, Any] = {"bestTrialName": trial.name}
    if trial.parameters:
        document["parameterAssignments"] = _assignments(trial.parameters)
    document["observation"] = observation
    return document


def katib_status(status: ExperimentStatus, now: datetime | None = None) -> dict[str, Any]:
    """The Experiment's ``.status`` as Katib's controller would write it for these trials."""
    document: dict[str, Any] = {}
    if status.start_time is not None:
        document["startTime"] = rfc3339(status.start_time)
    if status.completion_time is not None and status.finished:
        document["completionTime"] = rfc3339(status.completion_time)
    document["conditions"] = experiment_conditions(status, now)
    document["currentOptimalTrial"] = optimal_trial(status.optimal_trial)

    buckets: dict[str, list[str]] = {field: [] for field, _, _ in _TRIAL_LISTS}
    pending: list[str] = []
    by_condition = {condition: field for field, _, condition in _TRIAL_LISTS}
    for trial in status.trials:
        field = by_condition.get(trial.condition)
        (buckets[field] if field else pending).append(trial.name)
    for field, _, _ in _TRIAL_LISTS:
        if buckets[field]:
            document[field] = buckets[field]
    if pending:
        document["pendingTrialList"] = pending

    counters = {"trials": len(status.trials)}
    counters.update({counter: len(buckets[field]) for field, counter, _ in _TRIAL_LISTS})
    counters["trialsPending"] = len(pending)
    document.update({name: value for name, value in counters.items() if value})
    return document


def trial_conditions(trial: TrialRecord) -> list[dict[str, Any]]:
    """A Trial's condition history: Created, Running (False once it ended), then how it ended."""
    conditions = [_condition(TRIAL_CREATED, "True", "TrialCreated", "Trial is created", trial.start_time)]
    if trial.condition == TRIAL_CREATED:
        return conditions
    if trial.condition in TRIAL_FINISHED:
        conditions.append(
            _condition(TRIAL_RUNNING, "False", "TrialRunning", "Trial is running", trial.completion_time)
        )
        reason = trial.reason or f"Trial{trial.condition}"
        conditions.append(_condition(trial.condition, "True", reason, trial.message, trial.completion_time))
        return conditions
    reason = trial.reason or "TrialRunning"
    conditions.append(
        _condition(TRIAL_RUNNING, "True", reason, trial.message or "Trial is running", trial.start_time)
    )
    return conditions


def katib_trial(trial: TrialRecord, experiment: str) -> dict[str, Any]:
    """A Katib Trial object (``kubectl get trial -o yaml``), plus where this machine keeps its logs."""
    metadata: dict[str, Any] = {"name": trial.name, "labels": {EXPERIMENT_LABEL: experiment}}
    annotations = {}
    if trial.log_dir is not None:
        annotations["katib-suite/log-dir"] = str(trial.log_dir)
    if trial.output_dir:
        annotations["katib-suite/output-dir"] = trial.output_dir
    if annotations:
        metadata["annotations"] = annotations
    status: dict[str, Any] = {}
    if trial.start_time is not None:
        status["startTime"] = rfc3339(trial.start_time)
    if trial.completion_time is not None:
        status["completionTime"] = rfc3339(trial.completion_time)
    status["conditions"] = trial_conditions(trial)
    if trial.metrics:
        status["observation"] = {"metrics": [_metric(m) for m in trial.metrics]}
    return {
        "apiVersion": API_VERSION,
        "kind": "Trial",
        "metadata": metadata,
        "spec": {"parameterAssignments": _assignments(trial.parameters)},
        "status": status,
    }


def katib_experiment(
    status: ExperimentStatus, spec: Mapping[str, Any] | None = None, namespace: str | None = None
) -> dict[str, Any]:
    """The whole Experiment object: metadata, the spec as submitted, and Katib's ``.status``.

    ``spec`` is the ``spec`` mapping (or a whole Experiment document, whose metadata is then kept).
    """
    metadata: dict[str, Any] = {}
    if spec is not None and "spec" in spec:
        metadata = dict(spec.get("metadata") or {})
        spec = spec["spec"]
    metadata["name"] = status.name
    if namespace and "namespace" not in metadata:
        metadata["namespace"] = namespace
    if status.start_time is not None:
        metadata.setdefault("creationTimestamp", rfc3339(status.start_time))
    metadata.setdefault("annotations", {})
    metadata["annotations"] = {**metadata["annotations"], "katib-suite/backend": status.backend}
    return {
        "apiVersion": API_VERSION,
        "kind": "Experiment",
        "metadata": metadata,
        "spec": dict(spec or {}),
        "status": katib_status(status),
    }
