"""Typed Katib v1beta1 Experiment.

The YAML is parsed once, at the boundary, into these frozen objects; nothing downstream passes raw
dicts, except the trial template's ``trialSpec``, which is an arbitrary Kubernetes resource (a
PyTorchJob, a batch/v1 Job, ...) and stays a mapping.

Katib keeps feasible-space bounds as strings ("1e-5"). They are kept verbatim here so the file
round-trips without loss; the typed accessors (``FeasibleSpace.low`` ...) convert them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PARAMETER_TYPES = ("double", "int", "discrete", "categorical")
DISTRIBUTIONS = ("uniform", "logUniform", "normal", "logNormal")
OBJECTIVE_TYPES = ("minimize", "maximize")
METRIC_STRATEGIES = ("min", "max", "latest")
RESUME_POLICIES = ("Never", "LongRunning", "FromVolume")
COLLECTOR_KINDS = ("StdOut", "File", "TensorFlowEvent", "PrometheusMetric", "Custom", "Push", "None")
FILE_FORMATS = ("TEXT", "JSON")

# pkg/metricscollector/v1beta1/common/const.go, verbatim.
DEFAULT_METRICS_FORMAT = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
DEFAULT_METRICS_FILE = "/var/log/katib/metrics.log"


@dataclass(frozen=True)
class FeasibleSpace:
    min: str | None = None
    max: str | None = None
    step: str | None = None
    list: tuple[str, ...] = ()
    distribution: str | None = None  # uniform | logUniform | normal | logNormal; None = Katib's default

    @property
    def low(self) -> float:
        return float(self.min)  # type: ignore[arg-type]

    @property
    def high(self) -> float:
        return float(self.max)  # type: ignore[arg-type]

    @property
    def step_value(self) -> float | None:
        return float(self.step) if self.step not in (None, "") else None


@dataclass(frozen=True)
class Parameter:
    name: str
    parameter_type: str  # double | int | discrete | categorical
    feasible_space: FeasibleSpace


@dataclass(frozen=True)
class MetricStrategy:
    name: str
    value: str  # min | max | latest


@dataclass(frozen=True)
class Objective:
    type: str  # minimize | maximize
    objective_metric_name: str
    goal: float | None = None
    additional_metric_names: tuple[str, ...] = ()
    metric_strategies: tuple[MetricStrategy, ...] = ()

    def strategy_for(self, metric: str) -> str:
        """The strategy Katib uses for ``metric`` (explicit, else min/max by objective type)."""
        for strategy in self.metric_strategies:
            if strategy.name == metric:
                return strategy.value
        return "min" if self.type == "minimize" else "max"


@dataclass(frozen=True)
class Setting:
    name: str
    value: str


@dataclass(frozen=True)
class Algorithm:
    algorithm_name: str
    algorithm_settings: tuple[Setting, ...] = ()

    @property
    def settings(self) -> dict[str, str]:
        return {s.name: s.value for s in self.algorithm_settings}


@dataclass(frozen=True)
class EarlyStopping:
    algorithm_name: str
    algorithm_settings: tuple[Setting, ...] = ()

    @property
    def settings(self) -> dict[str, str]:
        return {s.name: s.value for s in self.algorithm_settings}


@dataclass(frozen=True)
class MetricsCollector:
    kind: str = "StdOut"
    metrics_format: tuple[str, ...] = ()  # source.filter.metricsFormat; empty = Katib's default regex
    file_path: str | None = None  # source.fileSystemPath.path (File / TensorFlowEvent)
    file_format: str | None = None  # source.fileSystemPath.format: TEXT | JSON (File)
    file_kind: str | None = None  # source.fileSystemPath.kind: File | Directory
    # Anything else in metricsCollectorSpec (custom collector container, Prometheus httpGet, ...),
    # kept verbatim so the spec round-trips: the spec minus the typed fields above, nested as in the
    # YAML (e.g. ``{"collector": {"customCollector": {...}}, "source": {"httpGet": {...}}}``).
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def regexes(self) -> tuple[str, ...]:
        return self.metrics_format or (DEFAULT_METRICS_FORMAT,)


@dataclass(frozen=True)
class TrialParameter:
    name: str
    reference: str
    description: str = ""


@dataclass(frozen=True)
class TrialTemplate:
    trial_parameters: tuple[TrialParameter, ...]
    trial_spec: Mapping[str, Any] | None = None
    config_map: Mapping[str, Any] | None = None
    primary_container_name: str | None = None
    primary_pod_labels: Mapping[str, str] = field(default_factory=dict)
    success_condition: str | None = None
    failure_condition: str | None = None
    retain: bool = False

    @property
    def kind(self) -> str | None:
        return (self.trial_spec or {}).get("kind")


@dataclass(frozen=True)
class Experiment:
    name: str
    objective: Objective
    algorithm: Algorithm
    parameters: tuple[Parameter, ...]
    trial_template: TrialTemplate
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    early_stopping: EarlyStopping | None = None
    metrics_collector: MetricsCollector = field(default_factory=MetricsCollector)
    parallel_trial_count: int | None = None
    max_trial_count: int | None = None
    max_failed_trial_count: int | None = None
    resume_policy: str | None = None
    nas_config: Mapping[str, Any] | None = None

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)
