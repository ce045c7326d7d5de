"""Katib v1beta1 Experiment spec: typed model, loading, search-space composition, validation, rendering.

from experiments.spec import load_experiment, render_trial
exp = load_experiment("experiments/quickstart.yaml", search_space="search_spaces/lr-batch.yaml")
job = render_trial(exp, {"lr": "2e-5", "batch_size": "32"}, trial_name="quickstart-abcdefgh")
"""

from experiments.spec._defaults import apply_defaults
from experiments.spec._errors import (
    InvalidExperimentError,
    Problem,
    SpecError,
    SpecFileError,
    SpecNotFoundError,
)
from experiments.spec._load import compose, load_experiment
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
from experiments.spec._parse import parse_experiment
from experiments.spec._render import (
    RenderError,
    nproc_per_node,
    primary_container,
    render_trial,
    replica_specs,
)
from experiments.spec._serialize import from_sdk, to_dict, to_sdk, to_yaml
from experiments.spec._validate import validate_experiment

__all__ = [
    "Algorithm",
    "EarlyStopping",
    "Experiment",
    "FeasibleSpace",
    "InvalidExperimentError",
    "MetricStrategy",
    "MetricsCollector",
    "Objective",
    "Parameter",
    "Problem",
    "RenderError",
    "Setting",
    "SpecError",
    "SpecFileError",
    "SpecNotFoundError",
    "TrialParameter",
    "TrialTemplate",
    "apply_defaults",
    "compose",
    "from_sdk",
    "load_experiment",
    "nproc_per_node",
    "parse_experiment",
    "primary_container",
    "render_trial",
    "replica_specs",
    "to_dict",
    "to_sdk",
    "to_yaml",
    "validate_experiment",
]
