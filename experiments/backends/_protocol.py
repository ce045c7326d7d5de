"""What every backend (local: Optuna + torchrun; cluster: Katib SDK) offers, and the records it returns.

The records mirror Katib's own objects so that ``status`` prints the ``.status`` Katib would, whatever
ran the experiment: trial conditions are Katib's (Created, Running, Succeeded, Killed, Failed,
MetricsUnavailable, EarlyStopped) and an experiment ends as Katib ends it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from experiments.spec import Experiment
from experiments.spec._lifecycle import MAX_TRIALS_REACHED

# Katib trial conditions (pkg/apis/controller/trials/v1beta1/trial_types.go).
TRIAL_CREATED = "Created"
TRIAL_RUNNING = "Running"
TRIAL_SUCCEEDED = "Succeeded"
TRIAL_KILLED = "Killed"
TRIAL_FAILED = "Failed"
TRIAL_METRICS_UNAVAILABLE = "MetricsUnavailable"
TRIAL_EARLY_STOPPED = "EarlyStopped"
TRIAL_CONDITIONS = (
    TRIAL_CREATED,
    TRIAL_RUNNING,
    TRIAL_SUCCEEDED,
    TRIAL_KILLED,
    TRIAL_FAILED,
    TRIAL_METRICS_UNAVAILABLE,
    TRIAL_EARLY_STOPPED,
)
TRIAL_FINISHED = (TRIAL_SUCCEEDED, TRIAL_KILLED, TRIAL_FAILED, TRIAL_METRICS_UNAVAILABLE, TRIAL_EARLY_STOPPED)

# Katib experiment conditions and reasons (pkg/controller.v1beta1/experiment/util/status_util.go).
EXPERIMENT_CREATED = "Created"
EXPERIMENT_RUNNING = "Running"
EXPERIMENT_RESTARTING = "Restarting"
EXPERIMENT_SUCCEEDED = "Succeeded"
EXPERIMENT_FAILED = "Failed"
REASON_GOAL_REACHED = "ExperimentGoalReached"
REASON_MAX_TRIALS_REACHED = MAX_TRIALS_REACHED  # the spec owns it: Katib's resume rules turn on it
REASON_SUGGESTION_END_REACHED = "ExperimentSuggestionEndReached"
REASON_MAX_FAILED_TRIALS_REACHED = "ExperimentMaxFailedTrialsReached"
REASON_KILLED = "ExperimentKilled"  # local only: Ctrl-C / SIGTERM to the runner; resume continues it


@dataclass(frozen=True)
class Observation:
    """One reported value of one metric, as Katib's collector records it (value kept as a string)."""

    name: str
    value: str
    timestamp: datetime | None = None  # None: the line carried no RFC 3339 timestamp (Katib's zero time)


@dataclass(frozen=True)
class MetricSummary:
    """Katib's ``observation.metrics[]`` entry: min / max / latest over a trial's observation log."""

    name: str
    min: str
    max: str
    latest: str


@dataclass(frozen=True)
class TrialRecord:
    name: str
    parameters: Mapping[str, str]  # Katib parameter name -> assigned value, as Katib passes it (strings)
    condition: str  # one of TRIAL_CONDITIONS
    reason: str = ""
    message: str = ""
    metrics: tuple[MetricSummary, ...] = ()
    observations: tuple[Observation, ...] = ()
    start_time: datetime | None = None
    completion_time: datetime | None = None
    log_dir: Path | None = None  # local backend: per-replica logs
    output_dir: str | None = None  # the trainer's --output_dir as rendered (local path or s3:// URI)

    def metric(self, name: str) -> MetricSummary | None:
        return next((m for m in self.metrics if m.name == name), None)


@dataclass(frozen=True)
class ExperimentStatus:
    name: str
    condition: str  # Created | Running | Restarting | Succeeded | Failed
    reason: str = ""
    message: str = ""
    trials: tuple[TrialRecord, ...] = ()
    optimal_trial: TrialRecord | None = None
    start_time: datetime | None = None
    completion_time: datetime | None = None
    max_trial_count: int | None = None
    backend: str = "local"

    def count(self, *conditions: str) -> int:
        return sum(1 for t in self.trials if t.condition in conditions)

    @property
    def finished(self) -> bool:
        return self.condition in (EXPERIMENT_SUCCEEDED, EXPERIMENT_FAILED)


@dataclass(frozen=True)
class ExperimentSummary:
    name: str
    condition: str
    reason: str = ""
    trials: int = 0
    succeeded: int = 0
    best_value: str | None = None
    created: datetime | None = None
    backend: str = "local"
    extra: Mapping[str, str] = field(default_factory=dict)


ProgressCallback = Callable[[ExperimentStatus], None]


class ExperimentHandle(Protocol):
    """A submitted experiment. ``wait`` drives it (local) or polls it (cluster) until it ends.

    Detaching is the backend's business: a handle whose backend runs the experiment elsewhere (cluster:
    Katib's controller) sets ``detached = True`` and offers ``detach() -> str``, the message the CLI prints
    instead of driving it (``submit`` and ``resume`` return at once; Ctrl-C in ``watch`` only stops watching).
    """

    name: str

    def wait(
        self, progress: ProgressCallback | None = None, timeout: float | None = None
    ) -> ExperimentStatus: ...

    def status(self) -> ExperimentStatus: ...

    def trials(self) -> Sequence[TrialRecord]: ...

    def optimal_trial(self) -> TrialRecord | None: ...

    @property
    def experiment(self) -> Experiment: ...


class Backend(Protocol):
    name: str

    def submit(self, experiment: Experiment, *, name: str | None = None) -> ExperimentHandle: ...

    def get(self, name: str) -> ExperimentHandle: ...

    def resume(
        self,
        name: str,
        *,
        max_trial_count: int | None = None,
        parallel_trial_count: int | None = None,
        max_failed_trial_count: int | None = None,
    ) -> ExperimentHandle: ...

    def list(self) -> Sequence[ExperimentSummary]: ...

    def delete(self, name: str) -> None: ...

    def logs(self, name: str, trial: str) -> Mapping[str, Sequence[str]]:
        """Replica (``master-0``, ``worker-0`` ...) -> its log as text lines, without line endings."""
        ...
