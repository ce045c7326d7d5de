"""A trial's manifest, as Katib's experiment controller makes it
(pkg/controller.v1beta1/experiment/manifest/generator.go ``applyParameters``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from experiments.spec._errors import SpecError
from experiments.spec._k8s import containers, get, primary_replica
from experiments.spec._k8s import replica_specs as _replica_specs
from experiments.spec._model import Experiment
from experiments.spec._template_checks import (
    META_INDEX_RE,
    META_REFERENCE_RE,
    PARAM_PLACEHOLDER,
    template_string,
)


class RenderError(SpecError):
    """The trial cannot be rendered (missing assignments, configMap template, ...)."""


def _meta_value(reference: str, trial_spec: Mapping[str, Any], trial_name: str, namespace: str) -> str:
    key = META_REFERENCE_RE.search(reference).group(1)  # type: ignore[union-attr]
    index = None
    sub = META_INDEX_RE.search(key)
    if sub:
        key, index = sub.group(1), sub.group(2)
    if key == "Name":
        return trial_name
    if key == "Namespace":
        return namespace
    if key == "Kind":
        return str(trial_spec.get("kind", ""))
    if key == "APIVersion":
        return str(trial_spec.get("apiVersion", ""))
    if key in ("Labels", "Annotations"):
        where = key.lower()
        values = get(trial_spec, "metadata", where)
        if not isinstance(values, Mapping) or index not in values:
            raise RenderError(
                f"trial parameter reference {reference}: trialSpec.metadata.{where} has no key {index!r}; add it"
            )
        return str(values[index])
    raise RenderError(f"illegal reference of trial metadata: {reference}")


def render_trial(
    exp: Experiment, assignments: Mapping[str, str], trial_name: str, namespace: str = "default"
) -> dict[str, Any]:
    """The trial's job manifest: every ``${trialParameters.x}`` replaced by the value of x's reference
    (an assignment, or trial metadata), then metadata.name / namespace set, exactly as Katib does.

    Values are JSON-escaped before substitution (Katib inserts them raw, which breaks on a quote)."""
    tt = exp.trial_template
    if tt.trial_spec is None:
        raise RenderError(
            "the trial template comes from a ConfigMap, which only the cluster can read; "
            "inline it as spec.trialTemplate.trialSpec to render it here"
        )
    known = {p.name for p in exp.parameters}
    unknown = sorted(set(assignments) - known)
    if unknown:
        raise RenderError(
            f"assignment for unknown parameter(s) {', '.join(unknown)}; the parameters are [{', '.join(sorted(known))}]"
        )
    values: dict[str, str] = {}
    missing = []
    for tp in tt.trial_parameters:
        if META_REFERENCE_RE.search(tp.reference):
            values[tp.name] = _meta_value(tp.reference, tt.trial_spec, trial_name, namespace)
        elif tp.reference in assignments:
            values[tp.name] = str(assignments[tp.reference])
        else:
            missing.append(tp.reference)
    if missing:
        hint = " ".join(f"--assign {name}=<value>" for name in missing)
        raise RenderError(
            f"no value for parameter(s) {', '.join(missing)}; assign every parameter, e.g. {hint}"
        )
    text = template_string(tt.trial_spec)
    for name, value in values.items():
        text = text.replace(PARAM_PLACEHOLDER.format(name), json.dumps(value, ensure_ascii=False)[1:-1])
    rendered = json.loads(text)
    metadata = rendered.get("metadata")
    if not isinstance(metadata, dict):
        metadata = rendered["metadata"] = {}
    metadata["name"] = trial_name
    metadata["namespace"] = namespace
    # Same content; apiVersion, kind, metadata first so the printed manifest reads like kubectl's.
    head = {k: rendered[k] for k in ("apiVersion", "kind", "metadata") if k in rendered}
    return {**head, **{k: v for k, v in rendered.items() if k not in head}}


def replica_specs(rendered: Mapping[str, Any]) -> dict[str, tuple[int, dict]]:
    """Replica type -> (replicas, pod template) of a rendered trial spec.

    PyTorchJob (and the other Kubeflow jobs): one entry per replica type, replicas defaulted to 1 as the
    Training Operator does. A batch/v1 Job: ``{"Job": (1, template)}``."""
    return _replica_specs(rendered)


def nproc_per_node(rendered: Mapping[str, Any]) -> str:
    """The PyTorchJob's ``nprocPerNode`` as the operator sees it ("auto" when unset)."""
    value = get(rendered, "spec", "nprocPerNode")
    return str(value) if value is not None else "auto"


def primary_container(rendered_trial_spec: Mapping[str, Any], exp: Experiment) -> dict[str, Any]:
    """The container Katib treats as the trial: ``primaryContainerName`` in the replica that carries
    ``primaryPodLabels`` (the PyTorchJob Master, or Worker 0 without a Master)."""
    tt = exp.trial_template
    replica = primary_replica(rendered_trial_spec, tt.primary_pod_labels)
    specs = _replica_specs(rendered_trial_spec)
    order = [replica] if replica else []
    order += [name for name in specs if name != replica]
    for name in order:
        for container in containers(specs[name][1]):
            if container.get("name") == tt.primary_container_name:
                return container
    raise RenderError(
        f"no container named {tt.primary_container_name!r} in the trial spec; set "
        "spec.trialTemplate.primaryContainerName to the container that runs the trainer"
    )
