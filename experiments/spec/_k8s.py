"""Walking trial specs (Job, PyTorchJob and the other Kubeflow jobs) defensively: any shape may come in."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

# Kubeflow Training Operator v1 replica-spec keys, by kind.
REPLICA_SPEC_KEYS = {
    "PyTorchJob": "pytorchReplicaSpecs",
    "TFJob": "tfReplicaSpecs",
    "XGBoostJob": "xgbReplicaSpecs",
    "MPIJob": "mpiReplicaSpecs",
    "PaddleJob": "paddleReplicaSpecs",
    "JAXJob": "jaxReplicaSpecs",
}
KNOWN_KINDS = ("Job", *REPLICA_SPEC_KEYS)


def get(node: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def replica_specs(trial_spec: Mapping[str, Any]) -> dict[str, tuple[int, dict]]:
    """Replica type -> (replicas, pod template). A batch/v1 Job is one replica called "Job"."""
    kind = trial_spec.get("kind") if isinstance(trial_spec, Mapping) else None
    if kind == "Job":
        template = get(trial_spec, "spec", "template")
        return {"Job": (1, template if isinstance(template, dict) else {})}
    # Any shape may come in: a kind that is a list or mapping must not raise (unhashable).
    key = REPLICA_SPEC_KEYS.get(kind) if isinstance(kind, str) else None
    specs = get(trial_spec, "spec", key) if key else None
    out: dict[str, tuple[int, dict]] = {}
    if isinstance(specs, Mapping):
        for name, spec in specs.items():
            replicas = get(spec, "replicas")
            # The operator defaults replicas to 1.
            count = replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else 1
            template = get(spec, "template")
            out[str(name)] = (count, template if isinstance(template, dict) else {})
    return out


def containers(pod_template: Any) -> list[dict]:
    items = get(pod_template, "spec", "containers")
    return [c for c in items if isinstance(c, dict)] if isinstance(items, list) else []


def all_container_names(trial_spec: Any) -> Iterator[str]:
    """Every container name anywhere in the spec (``containers`` lists, Argo ``container``, Tekton steps)."""
    if isinstance(trial_spec, Mapping):
        for key, value in trial_spec.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for c in value:
                    if isinstance(c, Mapping) and isinstance(c.get("name"), str):
                        yield c["name"]
            yield from all_container_names(value)
    elif isinstance(trial_spec, list):
        for item in trial_spec:
            yield from all_container_names(item)


def primary_replica(trial_spec: Mapping[str, Any], primary_pod_labels: Mapping[str, str]) -> str | None:
    """The replica type whose pods carry ``primaryPodLabels`` (Training Operator pod labels)."""
    specs = replica_specs(trial_spec)
    if trial_spec.get("kind") == "Job":
        return "Job"
    role = primary_pod_labels.get("training.kubeflow.org/job-role")
    replica_type = primary_pod_labels.get("training.kubeflow.org/replica-type")
    if replica_type:
        for name in specs:
            if name.lower() == replica_type.lower():
                return name
    if role == "master" or not primary_pod_labels:
        # job-role=master is the Master pod, or Worker 0 when there is no Master.
        for name in ("Master", "Chief", "Launcher", "Worker"):
            if name in specs:
                return name
    return None
