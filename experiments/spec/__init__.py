"""Katib v1beta1 Experiment spec: typed model, loading, search-space composition, validation, rendering.

from experiments.spec import load_experiment, render_trial
exp = load_experiment("experiments/quickstart.yaml", search_space="search_spaces/lr-batch.yaml")
job = render_trial(exp, {"lr": "2e-5", "batch_size": "32"}, trial_name="quickstart-abcdefgh")
settings = algorithm_settings(exp)       # typed, validated: what a backend consumes
print(dump_yaml(job))                    # YAML that kubectl reads back as the same object
"""

from experiments.spec._defaults import apply_defaults
from experiments.spec._errors import (
    InvalidExperimentError,
    Problem,
    SpecError,
    SpecFileError,
    SpecNotFoundError,
)
from experiments.spec._load import compose, load_experiment, read_yaml
from experiments.spec._local_support import LOCAL_ALGORITHMS, LOCAL_COLLECTOR_KINDS, local_problems
from experiments.spec._metrics_format import (
    InvalidMetricsFormatError,
    compile_metrics_format,
    metrics_format_problem,
)
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
from experiments.spec._settings import (
    AlgorithmSettings,
    HyperbandSettings,
    MedianStopSettings,
    algorithm_settings,
    early_stopping_settings,
    parse_algorithm,
    parse_early_stopping,
)
from experiments.spec._validate import name_problems, validate_experiment
from experiments.spec._yaml import dump_yaml, load_yaml, load_yaml_documents

__all__ = [
    "LOCAL_ALGORITHMS",
    "LOCAL_COLLECTOR_KINDS",
    "Algorithm",
    "AlgorithmSettings",
    "EarlyStopping",
    "Experiment",
    "FeasibleSpace",
    "HyperbandSettings",
    "InvalidExperimentError",
    "InvalidMetricsFormatError",
    "MedianStopSettings",
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
    "algorithm_settings",
    "apply_defaults",
    "compile_metrics_format",
    "compose",
    "dump_yaml",
    "early_stopping_settings",
    "from_sdk",
    "load_experiment",
    "load_yaml",
    "load_yaml_documents",
    "local_problems",
    "metrics_format_problem",
    "name_problems",
    "nproc_per_node",
    "parse_algorithm",
    "parse_early_stopping",
    "parse_experiment",
    "primary_container",
    "read_yaml",
    "render_trial",
    "replica_specs",
    "to_dict",
    "to_sdk",
    "to_yaml",
    "validate_experiment",
]
