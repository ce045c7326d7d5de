"""What Katib accepts but the local backend (Optuna + torchrun on this machine) cannot run.

Pure functions of the spec, so ``katib experiment validate`` reports them before anything runs, with the
cluster backend named as the way; the local backend itself consumes the typed settings and never checks
again. Each rule says why: an algorithm with no Optuna counterpart, a collector that needs a cluster
component, a distribution Optuna cannot sample.
"""

from __future__ import annotations

from experiments.spec._algorithms import ALGORITHMS
from experiments.spec._errors import Problem
from experiments.spec._model import Experiment

# Katib algorithmName -> how the local backend runs it (see experiments/backends/local/_suggest.py).
LOCAL_ALGORITHMS = (
    "random",
    "tpe",
    "multivariate-tpe",
    "grid",
    "cmaes",
    "bayesianoptimization",
    "sobol",
    "hyperband",
)
# Collector kinds that read the trial's own output; the others need a cluster component (a sidecar
# reading TF event files, a Prometheus scrape, a custom container, Katib's db-manager for Push).
LOCAL_COLLECTOR_KINDS = ("StdOut", "File")
# Trial kinds the local backend turns into process trees (PyTorchJob replicas, a batch/v1 Job's pod).
LOCAL_TRIAL_KINDS = ("PyTorchJob", "Job")
_CLUSTER = "Katib runs it; submit with --backend cluster"


def local_problems(exp: Experiment) -> list[Problem]:
    """Every reason the local backend cannot run this (Katib-valid) experiment; empty: it can."""
    out: list[Problem] = []
    name = exp.algorithm.algorithm_name
    if name in ALGORITHMS and name not in LOCAL_ALGORITHMS:  # an unknown name is the spec's own problem
        out.append(
            Problem(
                "spec.algorithm.algorithmName",
                name,
                f"algorithm {name!r} is not supported by the local backend (it runs "
                f"{', '.join(LOCAL_ALGORITHMS)}); {_CLUSTER}",
            )
        )
    for i, setting in enumerate(exp.algorithm.algorithm_settings):
        if name == "bayesianoptimization" and setting.name == "base_estimator" and setting.value != "GP":
            out.append(
                Problem(
                    f"spec.algorithm.algorithmSettings[{i}].value",
                    setting.value,
                    "the local backend's bayesianoptimization is Optuna's GPSampler, so base_estimator must "
                    f"be GP (or use tpe for a tree-based model); for {setting.value} {_CLUSTER}",
                )
            )
    collector = collector_problem(exp.metrics_collector.kind)
    if collector is not None:
        out.append(collector)
    kind = exp.trial_template.kind
    if kind is not None and kind not in LOCAL_TRIAL_KINDS:
        out.append(
            Problem(
                "spec.trialTemplate.trialSpec.kind",
                kind,
                f"trial kind {kind} is not supported by the local backend, which runs "
                f"{' and '.join(LOCAL_TRIAL_KINDS)} trials; {_CLUSTER}",
            )
        )
    for i, p in enumerate(exp.parameters):
        out += _distribution(i, p)
    return out


def collector_problem(kind: str) -> Problem | None:
    """Why the local backend cannot collect metrics with this collector kind (None: it can)."""
    if kind in LOCAL_COLLECTOR_KINDS:
        return None
    return Problem(
        "spec.metricsCollectorSpec.collector.kind",
        kind,
        f"collector kind {kind} is not supported by the local backend, which reads the trial's own "
        f"output (StdOut or File); print Katib metric lines, or {_CLUSTER}",
    )


def _distribution(i: int, p) -> list[Problem]:
    fs = p.feasible_space
    log = fs.distribution in ("logUniform", "logNormal")
    if not log or not fs.step or p.parameter_type not in ("double", "int"):
        return []
    if p.parameter_type == "int":
        try:
            if int(fs.step) == 1:
                return []
        except ValueError:
            return []  # the feasible-space checks report it
    return [
        Problem(
            f"spec.parameters[{i}].feasibleSpace.step",
            fs.step,
            f"{p.name!r}: Optuna cannot sample a {fs.distribution} {p.parameter_type} on a step grid, so the "
            f"local backend cannot run it; drop step, use distribution uniform, or {_CLUSTER}",
        )
    ]


__all__ = ["LOCAL_ALGORITHMS", "LOCAL_COLLECTOR_KINDS", "collector_problem", "local_problems"]
