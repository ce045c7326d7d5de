"""Katib YAML mapping -> typed ``Experiment``, once, at the boundary.

Structural problems (wrong types, missing required fields, unknown keys) are collected, never raised
one by one: the user sees them all together. Semantic rules live in ``_validate``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from experiments.spec._errors import InvalidExperimentError, Problem
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

API_VERSION = "kubeflow.org/v1beta1"
KIND = "Experiment"

_SPEC_KEYS = (
    "objective",
    "algorithm",
    "earlyStopping",
    "parallelTrialCount",
    "maxTrialCount",
    "maxFailedTrialCount",
    "resumePolicy",
    "parameters",
    "nasConfig",
    "metricsCollectorSpec",
    "trialTemplate",
)
# Keys a search-space file may set; everything else belongs to the Experiment.
SEARCH_SPACE_KEYS = (
    "parameters",
    "algorithm",
    "earlyStopping",
    "maxTrialCount",
    "parallelTrialCount",
    "maxFailedTrialCount",
    "description",
)
_MISSING = object()


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


class _Reader:
    """Typed getters that record a Problem (and return a fallback) instead of raising."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, path: str, value: Any, message: str) -> None:
        self.problems.append(Problem(path, value, message))

    def mapping(self, node: Any, path: str, *, allowed: tuple[str, ...] | None = None) -> dict | None:
        if node is None:
            return None
        if not isinstance(node, Mapping):
            self.problem(path, node, f"must be a mapping, got {_type_name(node)}")
            return None
        for key in node:
            if not isinstance(key, str):
                self.problem(f"{path}.{key}", key, "keys must be strings; quote the key")
            elif allowed is not None and key not in allowed:
                self.problem(
                    f"{path}.{key}", None, f"unknown field {key!r}; must be one of [{', '.join(allowed)}]"
                )
        return dict(node)

    def list(self, node: Any, path: str) -> list:
        if node is None:
            return []
        if not isinstance(node, list):
            self.problem(path, node, f"must be a list, got {_type_name(node)}")
            return []
        return node

    def string(
        self, node: Mapping, key: str, path: str, *, required: bool = False, quote: bool = False
    ) -> Any:
        value = node.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.problem(f"{path}.{key}", None, "is required")
            return None
        if isinstance(value, str):
            return value
        if quote and isinstance(value, (int, float)) and not isinstance(value, bool):
            # Katib's CRD types these as strings; the API server rejects a bare YAML number.
            self.problem(
                f"{path}.{key}", value, f'must be a string in Katib\'s CRD; quote it: {key}: "{value}"'
            )
            return str(value)
        self.problem(f"{path}.{key}", value, f"must be a string, got {_type_name(value)}")
        return None

    def integer(self, node: Mapping, key: str, path: str) -> int | None:
        value = node.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(f"{path}.{key}", value, f"must be an integer, got {_type_name(value)}")
            return None
        return value

    def number(self, node: Mapping, key: str, path: str) -> float | None:
        value = node.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(f"{path}.{key}", value, f"must be a number, got {_type_name(value)}")
            return None
        return float(value)

    def boolean(self, node: Mapping, key: str, path: str) -> bool:
        value = node.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            self.problem(f"{path}.{key}", value, f"must be true or false, got {_type_name(value)}")
            return False
        return value

    def string_list(self, node: Mapping, key: str, path: str, *, quote: bool = False) -> tuple[str, ...]:
        out = []
        for i, item in enumerate(self.list(node.get(key), f"{path}.{key}")):
            if isinstance(item, str):
                out.append(item)
            elif quote and isinstance(item, (int, float)) and not isinstance(item, bool):
                self.problem(
                    f"{path}.{key}[{i}]", item, f'must be a string in Katib\'s CRD; quote it: "{item}"'
                )
                out.append(str(item))
            else:
                self.problem(f"{path}.{key}[{i}]", item, f"must be a string, got {_type_name(item)}")
        return tuple(out)

    def string_map(self, node: Any, path: str) -> dict[str, str]:
        mapping = self.mapping(node, path) or {}
        out = {}
        for key, value in mapping.items():
            if not isinstance(value, str):
                self.problem(f"{path}.{key}", value, f"must be a string, got {_type_name(value)}; quote it")
            elif isinstance(key, str):
                out[key] = value
        return out


def _settings(r: _Reader, node: Mapping, path: str) -> tuple[Setting, ...]:
    out = []
    for i, item in enumerate(r.list(node.get("algorithmSettings"), f"{path}.algorithmSettings")):
        item_path = f"{path}.algorithmSettings[{i}]"
        m = r.mapping(item, item_path, allowed=("name", "value"))
        if m is None:
            if item is None:
                r.problem(item_path, None, "must be a mapping with name and value")
            continue
        name = r.string(m, "name", item_path, required=True)
        value = r.string(m, "value", item_path, quote=True)
        if name is not None:
            out.append(Setting(name, "" if value is None else value))
    return tuple(out)


def parse_parameters(r: _Reader, node: Any, path: str) -> tuple[Parameter, ...]:
    params = []
    for i, item in enumerate(r.list(node, path)):
        p_path = f"{path}[{i}]"
        m = r.mapping(item, p_path, allowed=("name", "parameterType", "feasibleSpace"))
        if m is None:
            if item is None:
                r.problem(p_path, None, "must be a parameter mapping (name, parameterType, feasibleSpace)")
            continue
        name = r.string(m, "name", p_path, required=True)
        ptype = r.string(m, "parameterType", p_path, required=True)
        fs_path = f"{p_path}.feasibleSpace"
        fs = r.mapping(
            m.get("feasibleSpace"), fs_path, allowed=("min", "max", "step", "list", "distribution")
        )
        fs = fs or {}
        space = FeasibleSpace(
            min=r.string(fs, "min", fs_path, quote=True),
            max=r.string(fs, "max", fs_path, quote=True),
            step=r.string(fs, "step", fs_path, quote=True),
            list=r.string_list(fs, "list", fs_path, quote=True),
            distribution=r.string(fs, "distribution", fs_path),
        )
        params.append(Parameter(name=name or "", parameter_type=ptype or "", feasible_space=space))
    return tuple(params)


def _objective(r: _Reader, node: Any) -> Objective:
    path = "spec.objective"
    m = r.mapping(
        node,
        path,
        allowed=("type", "goal", "objectiveMetricName", "additionalMetricNames", "metricStrategies"),
    )
    if m is None:
        if node is None:
            r.problem(path, None, "is required: set type (minimize|maximize) and objectiveMetricName")
        m = {}
    strategies = []
    for i, item in enumerate(r.list(m.get("metricStrategies"), f"{path}.metricStrategies")):
        s_path = f"{path}.metricStrategies[{i}]"
        s = r.mapping(item, s_path, allowed=("name", "value")) or {}
        name = r.string(s, "name", s_path, required=True)
        value = r.string(s, "value", s_path, required=True)
        if name is not None and value is not None:
            strategies.append(MetricStrategy(name, value))
    return Objective(
        type=r.string(m, "type", path, required=True) or "",
        objective_metric_name=r.string(m, "objectiveMetricName", path, required=True) or "",
        goal=r.number(m, "goal", path),
        additional_metric_names=r.string_list(m, "additionalMetricNames", path),
        metric_strategies=tuple(strategies),
    )


def _algorithm(r: _Reader, node: Any, path: str, cls: type) -> Any:
    m = r.mapping(node, path, allowed=("algorithmName", "algorithmSettings"))
    if m is None:
        return None
    name = r.string(m, "algorithmName", path, required=True)
    return cls(algorithm_name=name or "", algorithm_settings=_settings(r, m, path))


def _pop_path(tree: dict, *keys: str) -> Any:
    """Remove tree[k1][k2]...; returns the value (or None). Empty parents stay, so structure round-trips."""
    node = tree
    for key in keys[:-1]:
        node = node.get(key)
        if not isinstance(node, dict):
            return None
    return node.pop(keys[-1], None)


def _collector(r: _Reader, node: Any) -> MetricsCollector:
    path = "spec.metricsCollectorSpec"
    m = r.mapping(node, path, allowed=("collector", "source"))
    if m is None:
        return MetricsCollector()
    # Work on a deep copy; whatever is not typed stays in ``extra`` verbatim.
    rest = copy.deepcopy(m)
    collector = r.mapping(rest.get("collector"), f"{path}.collector", allowed=("kind", "customCollector"))
    source = r.mapping(rest.get("source"), f"{path}.source", allowed=("fileSystemPath", "filter", "httpGet"))
    kind = r.string(collector or {}, "kind", f"{path}.collector")
    fsp_path = f"{path}.source.fileSystemPath"
    fsp = r.mapping((source or {}).get("fileSystemPath"), fsp_path, allowed=("path", "kind", "format")) or {}
    flt = r.mapping((source or {}).get("filter"), f"{path}.source.filter", allowed=("metricsFormat",)) or {}
    result = MetricsCollector(
        kind=kind or "StdOut",
        metrics_format=r.string_list(flt, "metricsFormat", f"{path}.source.filter"),
        file_path=r.string(fsp, "path", fsp_path),
        file_format=r.string(fsp, "format", fsp_path),
        file_kind=r.string(fsp, "kind", fsp_path),
    )
    if isinstance(rest.get("collector"), dict):
        rest["collector"].pop("kind", None)
    if isinstance(rest.get("source"), dict):
        for key in ("path", "format", "kind"):
            _pop_path(rest, "source", "fileSystemPath", key)
        _pop_path(rest, "source", "filter", "metricsFormat")
    return dataclasses.replace(result, extra=rest)


def _trial_template(r: _Reader, node: Any) -> TrialTemplate:
    path = "spec.trialTemplate"
    m = r.mapping(
        node,
        path,
        allowed=(
            "retain",
            "primaryContainerName",
            "primaryPodLabels",
            "successCondition",
            "failureCondition",
            "trialParameters",
            "trialSpec",
            "configMap",
        ),
    )
    if m is None:
        if node is None:
            r.problem(path, None, "is required: set trialParameters, primaryContainerName and trialSpec")
        m = {}
    params = []
    for i, item in enumerate(r.list(m.get("trialParameters"), f"{path}.trialParameters")):
        t_path = f"{path}.trialParameters[{i}]"
        t = r.mapping(item, t_path, allowed=("name", "reference", "description"))
        if t is None:
            if item is None:
                r.problem(t_path, None, "must be a mapping with name and reference")
            continue
        params.append(
            TrialParameter(
                name=r.string(t, "name", t_path, required=True) or "",
                reference=r.string(t, "reference", t_path, required=True) or "",
                description=r.string(t, "description", t_path) or "",
            )
        )
    trial_spec = r.mapping(m.get("trialSpec"), f"{path}.trialSpec")
    config_map = r.mapping(
        m.get("configMap"),
        f"{path}.configMap",
        allowed=("configMapName", "configMapNamespace", "templatePath"),
    )
    return TrialTemplate(
        trial_parameters=tuple(params),
        trial_spec=trial_spec,
        config_map=config_map,
        primary_container_name=r.string(m, "primaryContainerName", path),
        primary_pod_labels=r.string_map(m.get("primaryPodLabels"), f"{path}.primaryPodLabels"),
        success_condition=r.string(m, "successCondition", path),
        failure_condition=r.string(m, "failureCondition", path),
        retain=r.boolean(m, "retain", path),
    )


def parse_experiment(mapping: Any, *, source: str = "<dict>") -> Experiment:
    """Build the typed Experiment from a Katib YAML mapping; raise every structural problem together."""
    r = _Reader()
    root = r.mapping(mapping, "<root>", allowed=("apiVersion", "kind", "metadata", "spec", "status"))
    if root is None:
        raise InvalidExperimentError(
            source, r.problems or [Problem("<root>", mapping, "must be a Katib Experiment mapping")]
        )
    api_version = root.get("apiVersion")
    if api_version != API_VERSION:
        r.problem("apiVersion", api_version, f"must be {API_VERSION!r}")
    if root.get("kind") != KIND:
        r.problem("kind", root.get("kind"), f"must be {KIND!r}; this loader reads Katib Experiments only")
    meta = r.mapping(root.get("metadata"), "metadata") or {}
    name = r.string(meta, "name", "metadata", required=True)
    namespace = r.string(meta, "namespace", "metadata")
    labels = r.string_map(meta.get("labels"), "metadata.labels")
    annotations = r.string_map(meta.get("annotations"), "metadata.annotations")
    spec = r.mapping(root.get("spec"), "spec", allowed=_SPEC_KEYS)
    if spec is None:
        if root.get("spec") is None:
            r.problem("spec", None, "is required")
        raise InvalidExperimentError(source, r.problems)

    algorithm = _algorithm(r, spec.get("algorithm"), "spec.algorithm", Algorithm)
    if algorithm is None:
        if spec.get("algorithm") is None:
            r.problem("spec.algorithm", None, "is required: set algorithmName (e.g. tpe, random, grid)")
        algorithm = Algorithm("")
    nas = spec.get("nasConfig")
    if nas is not None and not isinstance(nas, Mapping):
        r.problem("spec.nasConfig", nas, "must be a mapping")
        nas = None
    experiment = Experiment(
        name=name or "",
        namespace=namespace,
        labels=labels,
        annotations=annotations,
        objective=_objective(r, spec.get("objective")),
        algorithm=algorithm,
        early_stopping=_algorithm(r, spec.get("earlyStopping"), "spec.earlyStopping", EarlyStopping),
        parameters=parse_parameters(r, spec.get("parameters"), "spec.parameters"),
        trial_template=_trial_template(r, spec.get("trialTemplate")),
        metrics_collector=_collector(r, spec.get("metricsCollectorSpec")),
        parallel_trial_count=r.integer(spec, "parallelTrialCount", "spec"),
        max_trial_count=r.integer(spec, "maxTrialCount", "spec"),
        max_failed_trial_count=r.integer(spec, "maxFailedTrialCount", "spec"),
        resume_policy=r.string(spec, "resumePolicy", "spec"),
        nas_config=dict(nas) if nas is not None else None,
    )
    if r.problems:
        raise InvalidExperimentError(source, r.problems)
    return experiment


def parse_search_space(mapping: Any, *, source: str) -> dict[str, Any]:
    """Check a search-space file's shape; return the typed pieces that replace the Experiment's."""
    r = _Reader()
    root = r.mapping(mapping, "<root>", allowed=SEARCH_SPACE_KEYS)
    if root is None:
        raise InvalidExperimentError(source, r.problems or [Problem("<root>", mapping, "must be a mapping")])
    if root.get("parameters") is None:
        r.problem("parameters", None, "is required: a search space is a list of Katib parameters")
    out: dict[str, Any] = {"parameters": parse_parameters(r, root.get("parameters"), "parameters")}
    if "algorithm" in root:
        out["algorithm"] = _algorithm(r, root["algorithm"], "algorithm", Algorithm)
    if "earlyStopping" in root:
        out["early_stopping"] = _algorithm(r, root["earlyStopping"], "earlyStopping", EarlyStopping)
    for key, field in (
        ("maxTrialCount", "max_trial_count"),
        ("parallelTrialCount", "parallel_trial_count"),
        ("maxFailedTrialCount", "max_failed_trial_count"),
    ):
        if key in root:
            out[field] = r.integer(root, key, "<root>")
    if r.problems:
        raise InvalidExperimentError(source, r.problems)
    return out
