"""A trial's logs on a cluster: text lines per replica (``master-0``, ``worker-0`` ...), as the local backend names
its replicas.

The primary pod's log comes through the SDK (``KatibClient.get_job_logs``): with the StdOut collector
Katib redirects the training process into a file that its ``metrics-logger-and-collector`` sidecar prints,
and the SDK knows to read that container. The other replicas' pods are read from their primary container.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from experiments.backends.cluster._errors import ClusterNotFoundError, Target, api_errors

TRIAL_POD_LABEL = "katib.kubeflow.org/trial"
REPLICA_TYPE = "training.kubeflow.org/replica-type"
REPLICA_INDEX = "training.kubeflow.org/replica-index"


def replica_name(labels: Mapping[str, str], pod_name: str) -> str:
    """``master-0`` from the Training Operator's pod labels; the pod's name for other job kinds."""
    kind, index = labels.get(REPLICA_TYPE), labels.get(REPLICA_INDEX)
    if kind and index is not None:
        return f"{kind.lower()}-{index}"
    return pod_name


def _is_primary(labels: Mapping[str, str], primary_labels: Mapping[str, str]) -> bool:
    return bool(primary_labels) and all(labels.get(k) == v for k, v in primary_labels.items())


def trial_logs(
    client: Any, experiment: str, trial: Mapping[str, Any], target: Target
) -> dict[str, list[str]]:
    """Replica -> log lines of ``trial`` (the Trial object as the API server returned it)."""
    name = trial["metadata"]["name"]
    namespace = target.namespace
    spec = trial.get("spec") or {}
    primary_labels = spec.get("primaryPodLabels") or {}
    container = spec.get("primaryContainerName")
    pods_target = Target(f"pods of trial {namespace}/{name}", namespace, target.context, target.server)
    with api_errors("list", pods_target):
        pods = client.core_api.list_namespaced_pod(
            namespace, label_selector=f"{TRIAL_POD_LABEL}={name}"
        ).items
    if not pods:
        raise ClusterNotFoundError(
            f"trial {name} has no pods in namespace {namespace}: it has not started yet, or it finished and "
            "Katib deleted its job (it does unless trialTemplate.retain is true); see its status with "
            f"`katib experiment trials {experiment} --backend cluster --namespace {namespace}`"
        )
    logs: dict[str, list[str]] = {}
    for pod in sorted(pods, key=lambda p: p.metadata.name):
        labels = pod.metadata.labels or {}
        replica = replica_name(labels, pod.metadata.name)
        with api_errors("read", Target(f"the log of pod {namespace}/{pod.metadata.name}", namespace,
                                       target.context, target.server)):  # fmt: skip
            if _is_primary(labels, primary_labels):
                logs[replica] = list(client.get_job_logs(experiment, name, namespace=namespace))
            else:
                text = client.core_api.read_namespaced_pod_log(
                    pod.metadata.name, namespace, container=container
                )
                logs[replica] = str(text or "").splitlines()
    return logs
