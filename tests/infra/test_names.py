"""The names the cluster path shares agree everywhere: infra/names.env (what the scripts create), the
Terraform defaults (what IRSA trusts and the bucket is called), and the experiments (what trials use).

A mismatch here is a trial that cannot write its checkpoint or a predictor that cannot read its model,
found only on a real cluster; this test finds it here."""

from __future__ import annotations

import re
from pathlib import Path

import hcl2
import pytest

from experiments.spec import load_yaml_documents
from tests.infra.conftest import INFRA, REPO_ROOT
from tests.infra.test_parse import unquote

CLUSTER_EXPERIMENTS = [
    REPO_ROOT / "experiments" / "roberta-large-yahoo.yaml",
    INFRA / "kind" / "quickstart.yaml",
]
ALL_EXPERIMENTS = [*sorted((REPO_ROOT / "experiments").glob("*.yaml")), INFRA / "kind" / "quickstart.yaml"]


def experiment(path: Path) -> dict:
    (doc,) = load_yaml_documents(path.read_text())
    return doc


def pod_specs(exp: dict) -> list[dict]:
    replicas = exp["spec"]["trialTemplate"]["trialSpec"]["spec"]["pytorchReplicaSpecs"]
    return [replica["template"]["spec"] for replica in replicas.values()]


def containers(exp: dict) -> list[dict]:
    return [c for spec in pod_specs(exp) for c in spec["containers"]]


def terraform_defaults() -> dict[str, object]:
    with (INFRA / "terraform" / "variables.tf").open() as handle:
        blocks = hcl2.load(handle)["variable"]
    return {unquote(name): unquote(body.get("default")) for block in blocks for name, body in block.items()}


def test_terraform_defaults_are_the_shared_names(names):
    defaults = terraform_defaults()
    assert defaults["namespace"] == names["KATIB_SUITE_NAMESPACE"]
    assert defaults["trainer_service_account"] == names["KATIB_SUITE_TRAINER_SA"]
    assert defaults["kserve_service_account"] == names["KATIB_SUITE_KSERVE_SA"]
    assert defaults["bucket_name"] == names["KATIB_SUITE_DEFAULT_BUCKET"]
    assert defaults["trials_prefix"] == names["KATIB_SUITE_TRIALS_PREFIX"]
    assert defaults["models_prefix"] == names["KATIB_SUITE_MODELS_PREFIX"]


def test_irsa_roles_trust_exactly_the_two_service_accounts_and_scope_s3_to_their_prefixes():
    text = (INFRA / "terraform" / "irsa.tf").read_text()
    assert "system:serviceaccount:${var.namespace}:${var.trainer_service_account}" in text
    assert "system:serviceaccount:${var.namespace}:${var.kserve_service_account}" in text
    # Object access is always under a prefix of this bucket; no wildcard actions or resources.
    assert '"${aws_s3_bucket.models.arn}/${var.trials_prefix}/*"' in text
    assert '"${aws_s3_bucket.models.arn}/${var.models_prefix}/*"' in text
    assert not re.search(r'"s3:\*"|resources\s*=\s*\["\*"\]', text)


@pytest.mark.parametrize("path", CLUSTER_EXPERIMENTS, ids=lambda p: p.name)
def test_cluster_experiments_use_the_shared_names(path, names):
    exp = experiment(path)
    name = exp["metadata"]["name"]
    assert exp["metadata"]["namespace"] == names["KATIB_SUITE_NAMESPACE"]
    for spec in pod_specs(exp):
        assert spec["serviceAccountName"] == names["KATIB_SUITE_TRAINER_SA"]
    for container in containers(exp):
        secrets = [ref["secretRef"]["name"] for ref in container["envFrom"]]
        assert secrets == [names["KATIB_SUITE_S3_SECRET"]]
    commands = {tuple(c["command"]) for c in containers(exp)}
    assert len(commands) == 1, "Master and Workers run the same trainer command"
    (output_dir,) = [a for a in commands.pop() if a.startswith("--output_dir=")]
    bucket, prefix = names["KATIB_SUITE_DEFAULT_BUCKET"], names["KATIB_SUITE_TRIALS_PREFIX"]
    assert output_dir == f"--output_dir=s3://{bucket}/{prefix}/{name}/${{trialParameters.trialName}}"


@pytest.mark.parametrize("path", ALL_EXPERIMENTS, ids=lambda p: p.name)
def test_every_shipped_experiment_names_the_placeholder_image(path, names):
    # One placeholder, swapped by infra/render-experiment.sh and refused by the cluster backend: an
    # experiment naming another image would be submitted with an image nobody built.
    images = {c["image"] for c in containers(experiment(path))}
    assert images == {names["KATIB_SUITE_PLACEHOLDER_IMAGE"]}


def test_gpu_experiment_tolerates_the_gpu_node_taint():
    main = (INFRA / "terraform" / "main.tf").read_text()
    assert 'key    = "nvidia.com/gpu"' in main and '"NO_SCHEDULE"' in main
    for spec in pod_specs(experiment(REPO_ROOT / "experiments" / "roberta-large-yahoo.yaml")):
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]


def test_scripts_take_names_from_names_env_only(names):
    # The scripts source names.env; a literal copy of a shared name in them would drift from it.
    scripts = [INFRA / "install.sh", INFRA / "kind" / "up.sh", INFRA / "render-experiment.sh"]
    shared = [names[k] for k in ("KATIB_SUITE_NAMESPACE", "KATIB_SUITE_TRAINER_SA", "KATIB_SUITE_S3_SECRET")]
    for script in scripts:
        text = script.read_text()
        assert "names.env" in text, f"{script} must source infra/names.env"
        for value in shared:
            assert value not in text, f"{script} spells {value!r} itself; use the variable from names.env"


def test_promote_best_deploys_with_the_kserve_service_account_infra_creates(names):
    from serving.cli import build_parser

    defaults = build_parser().parse_args(["quickstart"])
    assert defaults.service_account == names["KATIB_SUITE_KSERVE_SA"]


def test_promote_best_deploys_into_the_shared_namespace_with_the_kserve_service_account(names):
    from serving.cli import DEFAULT_NAMESPACE, build_parser

    defaults = build_parser().parse_args(["quickstart", "--to", "s3://b/models/m", "--deploy"])
    assert DEFAULT_NAMESPACE == names["KATIB_SUITE_NAMESPACE"]
    assert defaults.service_account == names["KATIB_SUITE_KSERVE_SA"]
