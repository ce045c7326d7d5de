"""Katib v1beta1 Experiment spec: typed model, loading, search-space composition, validation, rendering."""

from experiments.spec._model import (
    Algorithm,
    EarlyStopping,
    Experiment,
    FeasibleSpace,
    MetricsCollector,
    MetricStrategy,
    Objective,
    Parameter,
    Setting,
    TrialParameter,
    TrialTemplate,
)

__all__ = [
    "Algorithm",
    "EarlyStopping",
    "Experiment",
    "FeasibleSpace",
    "MetricStrategy",
    "MetricsCollector",
    "Objective",
    "Parameter",
    "Setting",
    "TrialParameter",
    "TrialTemplate",
]
