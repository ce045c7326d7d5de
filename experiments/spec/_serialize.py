"""Typed ``Experiment`` -> Katib YAML (camelCase dict), YAML text, and the kubeflow-katib SDK model."""

from __future__ import annotations

import copy
from typing import Any

from experiments.spec._model import Experiment, MetricsCollector
from experiments.spec._parse import API_VERSION, KIND, parse_experiment


def _settings(settings) -> list[dict[str, str]]:
    return [{"name": s.name, "value": s.value} for s in settings]


def _merge(base: dict, extra: dict) -> dict:
    """Deep-merge ``base`` (typed fields) over ``extra`` (verbatim remainder)."""
    out = copy.deepcopy(dict(extra))
    for key, value in base.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(value, out[key])
        else:
            out[key] = value
    return out


def _collector_dict(mc: MetricsCollector) -> dict[str, Any]:
    typed: dict[str, Any] = {"collector": {"kind": mc.kind}}
    # A parsed spec keeps its (emptied) "collector" block in ``extra`` when the YAML had one. Parsed
    # extras without it come from a spec that set only ``source`` (Katib's xgboostjob-lightgbm example:
    # just a metricsFormat filter) and leave the kind to Katib's default, StdOut: keep it absent so the
    # YAML round-trips as written. A collector built in code (no extras) always names its kind.
    if mc.kind == "StdOut" and mc.extra and "collector" not in mc.extra:
        del typed["collector"]
    fsp = {k: v for k, v in (("path", mc.file_path), ("kind", mc.file_kind), ("format", mc.file_format)) if v}
    source: dict[str, Any] = {}
    if fsp:
        source["fileSystemPath"] = fsp
    if mc.metrics_format:
        source["filter"] = {"metricsFormat": list(mc.metrics_format)}
    if source:
        typed["source"] = source
    return _merge(typed, dict(mc.extra))


def _parameters(params) -> list[dict[str, Any]]:
    out = []
    for p in params:
        fs = p.feasible_space
        space: dict[str, Any] = {}
        for key in ("min", "max", "step"):
            if getattr(fs, key) is not None:
                space[key] = getattr(fs, key)
        if fs.list:
            space["list"] = list(fs.list)
        if fs.distribution is not None:
            space["distribution"] = fs.distribution
        out.append({"name": p.name, "parameterType": p.parameter_type, "feasibleSpace": space})
    return out


def to_dict(exp: Experiment) -> dict[str, Any]:
    """The Experiment as Katib YAML: ``kubectl apply``-able, camelCase, only the fields that are set."""
    meta: dict[str, Any] = {"name": exp.name}
    if exp.namespace is not None:
        meta["namespace"] = exp.namespace
    if exp.labels:
        meta["labels"] = dict(exp.labels)
    if exp.annotations:
        meta["annotations"] = dict(exp.annotations)

    obj = exp.objective
    objective: dict[str, Any] = {"type": obj.type}
    if obj.goal is not None:
        objective["goal"] = obj.goal
    objective["objectiveMetricName"] = obj.objective_metric_name
    if obj.additional_metric_names:
        objective["additionalMetricNames"] = list(obj.additional_metric_names)
    if obj.metric_strategies:
        objective["metricStrategies"] = [{"name": s.name, "value": s.value} for s in obj.metric_strategies]

    spec: dict[str, Any] = {"objective": objective}
    algorithm: dict[str, Any] = {"algorithmName": exp.algorithm.algorithm_name}
    if exp.algorithm.algorithm_settings:
        algorithm["algorithmSettings"] = _settings(exp.algorithm.algorithm_settings)
    spec["algorithm"] = algorithm
    if exp.early_stopping is not None:
        es: dict[str, Any] = {"algorithmName": exp.early_stopping.algorithm_name}
        if exp.early_stopping.algorithm_settings:
            es["algorithmSettings"] = _settings(exp.early_stopping.algorithm_settings)
        spec["earlyStopping"] = es
    for key, value in (
        ("parallelTrialCount", exp.parallel_trial_count),
        ("maxTrialCount", exp.max_trial_count),
        ("maxFailedTrialCount", exp.max_failed_trial_count),
        ("resumePolicy", exp.resume_policy),
    ):
        if value is not None:
            spec[key] = value
    if exp.metrics_collector != MetricsCollector():
        spec["metricsCollectorSpec"] = _collector_dict(exp.metrics_collector)
    if exp.parameters:
        spec["parameters"] = _parameters(exp.parameters)
    if exp.nas_config is not None:
        spec["nasConfig"] = copy.deepcopy(dict(exp.nas_config))

    tt = exp.trial_template
    template: dict[str, Any] = {}
    if tt.retain:
        template["retain"] = True
    if tt.primary_container_name is not None:
        template["primaryContainerName"] = tt.primary_container_name
    if tt.primary_pod_labels:
        template["primaryPodLabels"] = dict(tt.primary_pod_labels)
    if tt.success_condition is not None:
        template["successCondition"] = tt.success_condition
    if tt.failure_condition is not None:
        template["failureCondition"] = tt.failure_condition
    template["trialParameters"] = [
        {
            "name": t.name,
            **({"description": t.description} if t.description else {}),
            "reference": t.reference,
        }
        for t in tt.trial_parameters
    ]
    if tt.trial_spec is not None:
        template["trialSpec"] = copy.deepcopy(dict(tt.trial_spec))
    if tt.config_map is not None:
        template["configMap"] = copy.deepcopy(dict(tt.config_map))
    spec["trialTemplate"] = template
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": spec}


def to_yaml(exp: Experiment) -> str:
    """The Experiment as YAML that ``kubectl apply`` reads back as the same object (``_yaml.dump_yaml``)."""
    from experiments.spec._yaml import dump_yaml

    return dump_yaml(to_dict(exp))


def _deserialize(data: Any, klass: str) -> Any:
    """Katib's own ApiClient cannot read the kubernetes models it re-exports (their ``Dict[str, str]``
    types), so Katib classes are built here and kubernetes classes by the kubernetes ApiClient."""
    import re

    import kubeflow.katib.models as katib_models

    if data is None:
        return None
    if klass.startswith("list["):
        inner = re.match(r"list\[(.*)\]", klass).group(1)
        return [_deserialize(item, inner) for item in data]
    if klass.startswith("dict("):
        inner = re.match(r"dict\(([^,]*), (.*)\)", klass).group(2)
        return {k: _deserialize(v, inner) for k, v in data.items()}
    if klass in ("str", "int", "float", "bool", "object"):
        return data
    if klass.startswith("V1beta1"):
        cls = getattr(katib_models, klass)
        kwargs = {}
        for attr, attr_type in cls.openapi_types.items():
            key = cls.attribute_map[attr]
            if key in data:
                kwargs[attr] = _deserialize(data[key], attr_type)
        return cls(**kwargs)
    from kubernetes.client import ApiClient

    return ApiClient()._ApiClient__deserialize(data, klass)


def to_sdk(exp: Experiment):
    """The kubeflow-katib SDK model (``V1beta1Experiment``), e.g. for ``KatibClient.create_experiment``."""
    return _deserialize(to_dict(exp), "V1beta1Experiment")


def from_sdk(obj) -> Experiment:
    """A ``V1beta1Experiment`` (e.g. from ``KatibClient.get_experiment``) back to the typed Experiment."""
    # Katib's generated client serialises by attribute_map (camelCase); the kubernetes one may not.
    from kubeflow.katib import ApiClient

    data = ApiClient().sanitize_for_serialization(obj)
    if isinstance(data, dict):
        data.pop("status", None)
        meta = data.get("metadata")
        if isinstance(meta, dict):
            # Server-side bookkeeping (uid, resourceVersion, ...) is not part of the spec.
            data["metadata"] = {
                k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta
            }
    return parse_experiment(data, source="<V1beta1Experiment>")
