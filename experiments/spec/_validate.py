"""Katib's validating webhook (pkg/webhook/v1beta1/experiment/validator/validator.go), mirrored,
plus the feasible-space and collector checks Katib only fails on at run time.

Every rule appends a Problem; nothing raises. The trial-template and trainer checks are in ``_template_checks``.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

from experiments.spec._algorithms import NAS_ALGORITHMS
from experiments.spec._errors import Problem
from experiments.spec._local_support import local_problems
from experiments.spec._metrics_format import metrics_format_problem
from experiments.spec._model import (
    DISTRIBUTIONS,
    METRIC_STRATEGIES,
    OBJECTIVE_TYPES,
    PARAMETER_TYPES,
    RESUME_POLICIES,
    Experiment,
    Parameter,
)
from experiments.spec._settings import parse_algorithm, parse_early_stopping

_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Trial names are "<experiment>-<8 random chars>" and end up as label values (<= 63 characters).
MAX_EXPERIMENT_NAME = 63 - 9
COLLECTOR_KINDS_018 = ("StdOut", "File", "TensorFlowEvent", "PrometheusMetric", "Custom", "Push")


def _counts(exp: Experiment) -> list[Problem]:
    out = []
    if exp.max_failed_trial_count is not None and exp.max_failed_trial_count < 0:
        out.append(Problem("spec.maxFailedTrialCount", exp.max_failed_trial_count, "must not be less than 0"))
    if exp.max_trial_count is not None and exp.max_trial_count <= 0:
        out.append(Problem("spec.maxTrialCount", exp.max_trial_count, "must be greater than 0"))
    if exp.parallel_trial_count is not None and exp.parallel_trial_count <= 0:
        out.append(Problem("spec.parallelTrialCount", exp.parallel_trial_count, "must be greater than 0"))
    if exp.max_trial_count is not None and exp.max_trial_count > 0:
        if exp.max_failed_trial_count is not None and exp.max_failed_trial_count > exp.max_trial_count:
            out.append(
                Problem(
                    "spec.maxFailedTrialCount",
                    exp.max_failed_trial_count,
                    f"must be <= spec.maxTrialCount ({exp.max_trial_count})",
                )
            )
        if exp.parallel_trial_count is not None and exp.parallel_trial_count > exp.max_trial_count:
            out.append(
                Problem(
                    "spec.parallelTrialCount",
                    exp.parallel_trial_count,
                    f"must be <= spec.maxTrialCount ({exp.max_trial_count})",
                )
            )
    return out


def name_problems(
    name: str | None, path: str = "metadata.name", max_length: int = MAX_EXPERIMENT_NAME
) -> list[Problem]:
    """Katib's metadata.name rules for ``name``: the one check for YAML names and command-line names alike."""
    if not name:
        return [Problem(path, name, "is required; name the experiment (e.g. roberta-lr-sweep)")]
    out = []
    if not _NAME.match(name):
        out.append(
            Problem(
                path,
                name,
                "must consist of lower case alphanumeric characters or '-', start with a letter and "
                "end with an alphanumeric character (e.g. 'my-name')",
            )
        )
    if len(name) > max_length:
        out.append(
            Problem(
                path,
                name,
                f"is {len(name)} characters; trial names add 9 and must fit a 63-character label, "
                f"so use at most {MAX_EXPERIMENT_NAME}"
                if max_length == MAX_EXPERIMENT_NAME
                else f"is {len(name)} characters; a Kubernetes name label holds at most {max_length}",
            )
        )
    return out


def _name(exp: Experiment) -> list[Problem]:
    return name_problems(exp.name)


def _objective(exp: Experiment) -> list[Problem]:
    obj = exp.objective
    path = "spec.objective"
    out = []
    if obj.type not in OBJECTIVE_TYPES:
        out.append(Problem(f"{path}.type", obj.type, f"must be one of [{', '.join(OBJECTIVE_TYPES)}]"))
    if not obj.objective_metric_name:
        out.append(
            Problem(f"{path}.objectiveMetricName", None, "is required: the metric the trials optimise")
        )
    if obj.objective_metric_name and obj.objective_metric_name in obj.additional_metric_names:
        out.append(
            Problem(
                f"{path}.additionalMetricNames",
                list(obj.additional_metric_names),
                f"must not contain the objective metric {obj.objective_metric_name!r}; remove it from the list",
            )
        )
    seen = set()
    for i, name in enumerate(obj.additional_metric_names):
        if name in seen:
            out.append(Problem(f"{path}.additionalMetricNames[{i}]", name, "is listed twice; keep one"))
        seen.add(name)
    if obj.goal is not None and not math.isfinite(obj.goal):
        out.append(Problem(f"{path}.goal", obj.goal, "must be a finite number"))
    known = {obj.objective_metric_name, *obj.additional_metric_names}
    for i, strategy in enumerate(obj.metric_strategies):
        s_path = f"{path}.metricStrategies[{i}]"
        if strategy.value not in METRIC_STRATEGIES:
            out.append(
                Problem(f"{s_path}.value", strategy.value, f"must be one of [{', '.join(METRIC_STRATEGIES)}]")
            )
        if strategy.name not in known:
            out.append(
                Problem(
                    f"{s_path}.name",
                    strategy.name,
                    "is neither the objective metric nor an additional metric; add it to additionalMetricNames",
                )
            )
    return out


def _algorithms(exp: Experiment) -> list[Problem]:
    # The same pass that builds the typed settings the backends consume (``_settings``): one rule, one place.
    out = parse_algorithm(exp)[1]
    if exp.algorithm.algorithm_name in NAS_ALGORITHMS and exp.nas_config is None:
        out.append(
            Problem(
                "spec.nasConfig",
                None,
                f"{exp.algorithm.algorithm_name} is a NAS algorithm; set nasConfig",
            )
        )
    if exp.early_stopping is not None:
        out += parse_early_stopping(exp)[1]
        kind = exp.metrics_collector.kind
        if kind not in ("StdOut", "File"):
            out.append(
                Problem(
                    "spec.metricsCollectorSpec.collector.kind",
                    kind,
                    "early stopping reads timestamped metric lines as the trial runs; use the StdOut or File "
                    "collector, or remove spec.earlyStopping",
                )
            )
    return out


def _number(text: str | None) -> float | None:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _integer(text: str | None) -> int | None:
    try:
        return int(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _parameter(i: int, p: Parameter) -> list[Problem]:
    path = f"spec.parameters[{i}]"
    label = f"{path} {p.name!r}" if p.name else path
    fs = p.feasible_space
    out = []
    if not p.name:
        out.append(Problem(f"{path}.name", None, "is required"))
    if p.parameter_type not in PARAMETER_TYPES:
        out.append(
            Problem(
                f"{path}.parameterType", p.parameter_type, f"must be one of [{', '.join(PARAMETER_TYPES)}]"
            )
        )
        return out
    if fs.distribution and fs.distribution not in DISTRIBUTIONS:
        out.append(
            Problem(
                f"{path}.feasibleSpace.distribution",
                fs.distribution,
                f"must be one of [{', '.join(DISTRIBUTIONS)}]",
            )
        )
    if not any((fs.min, fs.max, fs.step, fs.list)) and p.parameter_type in ("double", "int"):
        out.append(Problem(f"{path}.feasibleSpace", None, f"{label}: feasibleSpace must be specified"))
        return out
    if p.parameter_type in ("double", "int"):
        if fs.list:
            out.append(
                Problem(
                    f"{path}.feasibleSpace.list",
                    list(fs.list),
                    f"list is not supported for {p.parameter_type}; use min/max, or make it discrete",
                )
            )
        if not fs.min or not fs.max:
            out.append(
                Problem(
                    f"{path}.feasibleSpace", None, f"{label}: min and max are required for {p.parameter_type}"
                )
            )
            return out
        parse = _integer if p.parameter_type == "int" else _number
        kind = "an integer" if p.parameter_type == "int" else "a number"
        low, high = parse(fs.min), parse(fs.max)
        for key, raw, value in (("min", fs.min, low), ("max", fs.max, high)):
            if value is None:
                out.append(Problem(f"{path}.feasibleSpace.{key}", raw, f"{label}: {key} must be {kind}"))
        step = None
        if fs.step:
            step = parse(fs.step)
            if step is None or step <= 0:
                out.append(
                    Problem(f"{path}.feasibleSpace.step", fs.step, f"{label}: step must be {kind} > 0")
                )
        if low is None or high is None:
            return out
        if low > high:
            out.append(
                Problem(f"{path}.feasibleSpace", f"min={fs.min} max={fs.max}", f"{label}: min must be <= max")
            )
        if fs.distribution in ("logUniform", "logNormal") and low <= 0:
            out.append(
                Problem(
                    f"{path}.feasibleSpace.min",
                    fs.min,
                    f"{label}: a {fs.distribution} distribution needs min > 0 (log of {fs.min} is undefined)",
                )
            )
        if step is not None and step > 0 and low <= high and step > high - low and high > low:
            out.append(
                Problem(
                    f"{path}.feasibleSpace.step",
                    fs.step,
                    f"{label}: step is larger than max - min ({high - low:g})",
                )
            )
    else:
        if fs.min or fs.max or fs.step:
            out.append(
                Problem(
                    f"{path}.feasibleSpace",
                    {k: v for k, v in (("min", fs.min), ("max", fs.max), ("step", fs.step)) if v},
                    f"{label}: min, max and step are not supported for {p.parameter_type}; use list",
                )
            )
        if not fs.list:
            out.append(
                Problem(f"{path}.feasibleSpace.list", [], f"{label}: list must hold at least one value")
            )
        seen: set[str] = set()
        for j, item in enumerate(fs.list):
            if item in seen:
                out.append(
                    Problem(f"{path}.feasibleSpace.list[{j}]", item, f"{label}: duplicate value; keep one")
                )
            seen.add(item)
            if p.parameter_type == "discrete" and _number(item) is None:
                out.append(
                    Problem(
                        f"{path}.feasibleSpace.list[{j}]",
                        item,
                        f"{label}: discrete values must be numbers; use categorical for strings",
                    )
                )
    return out


def _parameters(exp: Experiment) -> list[Problem]:
    out = []
    if not exp.parameters and exp.nas_config is None:
        out.append(Problem("spec.parameters", None, "spec.parameters or spec.nasConfig must be specified"))
    if exp.parameters and exp.nas_config is not None:
        out.append(Problem("spec", None, "only one of spec.parameters and spec.nasConfig can be specified"))
    names: set[str] = set()
    for i, p in enumerate(exp.parameters):
        if p.name and p.name in names:
            out.append(
                Problem(
                    f"spec.parameters[{i}].name", p.name, "duplicate parameter name; rename or remove one"
                )
            )
        names.add(p.name)
        out += _parameter(i, p)
    return out


def _collector(exp: Experiment) -> list[Problem]:
    mc = exp.metrics_collector
    path = "spec.metricsCollectorSpec"
    out = []
    src = f"{path}.source"
    if mc.kind == "None":
        out.append(
            Problem(
                f"{path}.collector.kind",
                mc.kind,
                "collector kind None was renamed Push in Katib 0.18; write Push",
            )
        )
    elif mc.kind not in COLLECTOR_KINDS_018:
        out.append(
            Problem(f"{path}.collector.kind", mc.kind, f"must be one of [{', '.join(COLLECTOR_KINDS_018)}]")
        )
    if mc.kind == "File":
        if mc.file_kind != "File" or not mc.file_path or not os.path.isabs(mc.file_path):
            out.append(
                Problem(
                    f"{src}.fileSystemPath.path",
                    mc.file_path,
                    "the File collector needs an absolute file path (and fileSystemPath.kind File)",
                )
            )
        if mc.file_format not in ("TEXT", "JSON"):
            out.append(Problem(f"{src}.fileSystemPath.format", mc.file_format, "must be TEXT or JSON"))
        has_filter = isinstance(mc.extra.get("source"), dict) and "filter" in mc.extra["source"]
        if mc.file_format == "JSON" and (mc.metrics_format or has_filter):
            out.append(Problem(f"{src}.filter", None, "must be omitted when the metrics file format is JSON"))
    elif mc.kind == "TensorFlowEvent":
        if mc.file_kind != "Directory" or not mc.file_path or not os.path.isabs(mc.file_path):
            out.append(
                Problem(
                    f"{src}.fileSystemPath.path",
                    mc.file_path,
                    "the TensorFlowEvent collector needs an absolute directory path (fileSystemPath.kind Directory)",
                )
            )
        if mc.file_format:
            out.append(
                Problem(f"{src}.fileSystemPath.format", mc.file_format, "must be empty for TensorFlowEvent")
            )
    elif mc.kind == "PrometheusMetric":
        http_get = (
            (mc.extra.get("source") or {}).get("httpGet")
            if isinstance(mc.extra.get("source"), dict)
            else None
        )
        http_get = http_get if isinstance(http_get, dict) else {}
        port, http_path = http_get.get("port"), http_get.get("path")
        if _integer(port) is None or _integer(port) <= 0:  # type: ignore[operator]
            out.append(Problem(f"{src}.httpGet.port", port, "must be a positive integer"))
        if not isinstance(http_path, str) or not http_path.startswith("/"):
            out.append(Problem(f"{src}.httpGet.path", http_path, "must start with '/'"))
    elif mc.kind == "Custom":
        collector = mc.extra.get("collector")
        if not isinstance(collector, dict) or not collector.get("customCollector"):
            out.append(
                Problem(f"{path}.collector.customCollector", None, "is required for the Custom collector")
            )
        if mc.file_path is not None or mc.file_kind is not None:
            if (
                not mc.file_path
                or not os.path.isabs(mc.file_path)
                or mc.file_kind not in ("File", "Directory")
            ):
                out.append(
                    Problem(
                        f"{src}.fileSystemPath",
                        mc.file_path,
                        "needs an absolute path and kind File or Directory",
                    )
                )
    for i, pattern in enumerate(mc.metrics_format):
        f_path = f"{src}.filter.metricsFormat[{i}]"
        problem = metrics_format_problem(pattern)
        if problem:
            out.append(Problem(f_path, pattern, problem))
    return out


def _resume(exp: Experiment) -> list[Problem]:
    if exp.resume_policy and exp.resume_policy not in RESUME_POLICIES:
        return [
            Problem("spec.resumePolicy", exp.resume_policy, f"must be one of [{', '.join(RESUME_POLICIES)}]")
        ]
    return []


BACKENDS = ("local", "cluster")


def validate_experiment(exp: Experiment, backend: str | None = "local") -> list[Problem]:
    """Every problem Katib's webhook, its suggestion services or the trial run would hit. Empty: valid.

    ``backend="local"`` (the default, like the CLI's) adds what Katib accepts but the local backend cannot
    run (``_local_support``), each naming ``--backend cluster`` as the way; ``"cluster"`` or None: Katib's
    rules only. Runs on the defaulted experiment, as Katib's validating webhook runs after its mutating one."""
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)} or None; got: {backend!r}")
    from experiments.spec._defaults import apply_defaults
    from experiments.spec._template_checks import check_template

    exp = apply_defaults(exp)
    problems: list[Any] = []
    for rule in (_name, _counts, _objective, _algorithms, _resume, _parameters, _collector, check_template):
        problems += rule(exp)
    if backend == "local":
        problems += [p for p in local_problems(exp) if p not in problems]
    return problems
