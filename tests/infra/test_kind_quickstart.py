"""infra/kind/quickstart.yaml is experiments/quickstart.yaml plus only what a cluster needs, so the kind
run tunes the same problem the README's local quickstart does; both are valid Katib Experiments."""

from __future__ import annotations

import copy

import pytest

from experiments.spec import load_experiment, load_yaml_documents
from tests.infra.conftest import INFRA, REPO_ROOT

KIND = INFRA / "kind" / "quickstart.yaml"
LOCAL = REPO_ROOT / "experiments" / "quickstart.yaml"
# What the cluster copy adds or changes, per pod / container; everything else must be identical.
CLUSTER_ONLY_POD_FIELDS = {"serviceAccountName"}
CLUSTER_ONLY_CONTAINER_FIELDS = {"envFrom", "resources"}
CLUSTER_ONLY_ENV = {"HF_HUB_OFFLINE"}


def _strip_cluster_only(exp: dict) -> dict:
    exp = copy.deepcopy(exp)
    exp["metadata"].pop("namespace", None)
    for replica in exp["spec"]["trialTemplate"]["trialSpec"]["spec"]["pytorchReplicaSpecs"].values():
        pod = replica["template"]["spec"]
        for field in CLUSTER_ONLY_POD_FIELDS:
            pod.pop(field, None)
        for container in pod["containers"]:
            for field in CLUSTER_ONLY_CONTAINER_FIELDS:
                container.pop(field, None)
            container["env"] = [e for e in container.get("env", []) if e["name"] not in CLUSTER_ONLY_ENV]
            container["command"] = [
                "--output_dir=<trial dir>" if arg.startswith("--output_dir=") else arg
                for arg in container["command"]
            ]
    return exp


def test_kind_quickstart_is_the_local_quickstart_plus_cluster_fields_only():
    (kind,) = load_yaml_documents(KIND.read_text())
    (local,) = load_yaml_documents(LOCAL.read_text())
    assert _strip_cluster_only(kind) == _strip_cluster_only(local)


@pytest.mark.parametrize(
    ("path", "search_space"),
    [
        (KIND, None),
        (
            REPO_ROOT / "experiments" / "roberta-large-yahoo.yaml",
            REPO_ROOT / "search_spaces" / "lr-batch.yaml",
        ),
    ],
    ids=["kind-quickstart", "roberta-large-yahoo"],
)
def test_cluster_experiments_are_valid_for_katib(path, search_space):
    exp = load_experiment(path, search_space, backend="cluster")
    assert exp.name in {"quickstart", "roberta-large-yahoo"}
