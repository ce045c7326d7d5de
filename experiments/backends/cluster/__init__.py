"""The cluster backend: Katib schedules the trials (PyTorchJobs run by the Training Operator), this side talks
to the API server through the kubeflow-katib SDK.

backend = ClusterBackend(namespace="kubeflow-user", context="kind-katib-suite")
print(dump_yaml(backend.manifest(experiment)))          # what submit creates (--dry-run); talks to nothing
handle = backend.submit(experiment)                      # pre-flight checks, then create_experiment
handle.status().optimal_trial                            # by experiments.ranking, as on the local backend
"""

from experiments.backends.cluster._backend import ClusterBackend, ClusterExperiment
from experiments.backends.cluster._errors import (
    ClusterAPIError,
    ClusterError,
    ClusterNotFoundError,
    ClusterUnreachableError,
    ExperimentExistsError,
    ForbiddenError,
    KubeconfigError,
    PreflightError,
)
from experiments.backends.cluster._preflight import INJECTION_LABEL, PLACEHOLDER_IMAGE

__all__ = [
    "INJECTION_LABEL",
    "PLACEHOLDER_IMAGE",
    "ClusterAPIError",
    "ClusterBackend",
    "ClusterError",
    "ClusterExperiment",
    "ClusterNotFoundError",
    "ClusterUnreachableError",
    "ExperimentExistsError",
    "ForbiddenError",
    "KubeconfigError",
    "PreflightError",
]
