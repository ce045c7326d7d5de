"""The infra scripts, run for real with bash: what render-experiment.sh prints, what install.sh would do
(--dry-run talks to no cluster), and the one-line errors each prints for bad input."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from experiments.spec import load_yaml_documents
from tests.infra.conftest import INFRA, REPO_ROOT, run_script
from tests.infra.test_names import containers

ROBERTA = "experiments/roberta-large-yahoo.yaml"


def _bin_without(tmp_path: Path, *missing: str) -> str:
    """A PATH holding the basic tools but none of ``missing`` (docker, kind, kubectl)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in (
        "bash",
        "sed",
        "grep",
        "dirname",
        "cat",
        "tr",
        "od",
        "mktemp",
        "rm",
        "chmod",
        "seq",
        "sleep",
    ):
        found = shutil.which(name)
        if found and name not in missing:
            (bin_dir / name).symlink_to(found)
    return str(bin_dir)


def test_render_swaps_the_placeholder_image_and_bucket_and_nothing_else(names):
    result = run_script(
        "infra/render-experiment.sh",
        ROBERTA,
        "--bucket",
        "my-bucket",
        env={"KATIB_SUITE_IMAGE": "reg.example/t:1"},
    )
    assert result.returncode == 0, result.stderr
    (rendered,) = load_yaml_documents(result.stdout)
    assert {c["image"] for c in containers(rendered)} == {"reg.example/t:1"}
    args = [a for c in containers(rendered) for a in c["command"] if a.startswith("--output_dir=")]
    assert set(args) == {"--output_dir=s3://my-bucket/katib/roberta-large-yahoo/${trialParameters.trialName}"}
    # Undo the two substitutions: the rest is byte-for-byte the shipped file.
    undone = result.stdout.replace("s3://my-bucket/", f"s3://{names['KATIB_SUITE_DEFAULT_BUCKET']}/")
    assert undone.count("image: reg.example/t:1") == 2
    original_lines = [
        re.sub(r"image: \S+.*", "image: X", line) for line in (REPO_ROOT / ROBERTA).read_text().splitlines()
    ]
    undone_lines = [re.sub(r"image: \S+.*", "image: X", line) for line in undone.splitlines()]
    assert undone_lines == original_lines


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ((ROBERTA,), {}, "no trainer image set"),
        ((ROBERTA,), {"KATIB_SUITE_IMAGE": "ghcr.io/katib-suite/trainer:0.1.0"}, "no trainer image set"),
        (("experiments/missing.yaml", "--image", "r/t:1"), {}, "no experiment file"),
        ((ROBERTA, "--image", "r/t:1;rm -rf /"), {}, "has characters"),
        ((ROBERTA, "--frobnicate"), {}, "unknown option"),
    ],
    ids=["image-unset", "image-is-placeholder", "missing-file", "bad-characters", "unknown-option"],
)
def test_render_refuses_bad_input_in_one_line(argv, env, message):
    result = run_script("infra/render-experiment.sh", *argv, env=env)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1 and not result.stdout


def test_install_dry_run_for_kind_plans_the_pinned_platform_and_the_shared_names(names):
    result = run_script("infra/install.sh", "--target", "kind", "--context", "kind-x", "--dry-run")
    assert result.returncode == 0, result.stderr
    plan = result.stdout
    for pinned in (
        "cert-manager/releases/download/v1.16.3/cert-manager.yaml",
        "github.com/kubeflow/training-operator.git/manifests/overlays/standalone?ref=v1.9.0",
        "github.com/kubeflow/katib.git/manifests/v1beta1/installs/katib-standalone?ref=v0.19.0",
        "kserve/releases/download/v0.15.2/kserve.yaml",
        "kserve/releases/download/v0.15.2/kserve-cluster-resources.yaml",
        '\\"defaultDeploymentMode\\":\\"RawDeployment\\"',
        "kind/manifests/minio.yaml",
        "katib.kubeflow.org/metrics-collector-injection=enabled",
        f"create serviceaccount {names['KATIB_SUITE_TRAINER_SA']}",
        f"create serviceaccount {names['KATIB_SUITE_KSERVE_SA']}",
        f"create secret generic {names['KATIB_SUITE_S3_SECRET']}",
        f"create namespace {names['KATIB_SUITE_NAMESPACE']}",
        "serving.kserve.io/s3-endpoint=minio.minio.svc.cluster.local:9000",
        names["KATIB_SUITE_DEFAULT_BUCKET"],
    ):
        assert pinned in plan, pinned
    assert all(line.startswith(("==> ", "+ kubectl --context kind-x ")) for line in plan.splitlines())
    assert "eks.amazonaws.com/role-arn" not in plan and "k8s-device-plugin" not in plan


def test_install_dry_run_for_eks_uses_irsa_and_no_keys(names):
    role = "arn:aws:iam::123456789012:role/katib-suite-"
    result = run_script(
        "infra/install.sh", "--target", "eks", "--region", "eu-west-1", "--bucket", "b-1",
        "--trainer-role-arn", role + "trainer", "--kserve-role-arn", role + "kserve", "--dry-run",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    plan = result.stdout
    assert (
        f"annotate serviceaccount {names['KATIB_SUITE_TRAINER_SA']} --overwrite eks.amazonaws.com/role-arn={role}trainer"
        in plan
    )
    assert (
        f"annotate serviceaccount {names['KATIB_SUITE_KSERVE_SA']} --overwrite eks.amazonaws.com/role-arn={role}kserve"
        in plan
    )
    assert "serving.kserve.io/s3-endpoint=s3.eu-west-1.amazonaws.com" in plan
    assert (
        "k8s-device-plugin/v0.17.0/deployments/static/nvidia-device-plugin.yml" in plan
        and "eks/storageclass.yaml" in plan
    )
    assert "minio" not in plan


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "--target must be one of [kind, eks]"),
        (("--target", "gke"), "--target must be one of [kind, eks]; got: 'gke'"),
        (("--target", "eks"), "--target eks needs --region"),
        (
            ("--target", "eks", "--region", "us-east-1"),
            "terraform -chdir=infra/terraform output -raw install_command",
        ),
        (("--target", "kind", "--bogus"), "unknown option '--bogus'"),
    ],
)
def test_install_refuses_bad_arguments_in_one_line(argv, message):
    result = run_script("infra/install.sh", *argv, "--dry-run")
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_install_without_kubectl_names_the_fix(tmp_path):
    result = run_script(
        "infra/install.sh", "--target", "kind", env={"PATH": _bin_without(tmp_path, "kubectl")}
    )
    assert result.returncode == 2
    assert "kubectl is not installed" in result.stderr


def test_install_secrets_never_reach_the_output():
    result = run_script(
        "infra/install.sh", "--target", "kind", "--dry-run",
        env={"MINIO_ROOT_USER": "alice", "MINIO_ROOT_PASSWORD": "s3cr3t-value-never-printed"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "s3cr3t-value-never-printed" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("script", "missing", "message"),
    [
        ("infra/kind/up.sh", ("docker", "kind", "kubectl"), "docker is not installed"),
        ("infra/kind/down.sh", ("kind",), "kind is not installed"),
        ("infra/docker/build.sh", ("docker",), "docker is not installed"),
    ],
)
def test_scripts_without_their_tools_name_the_fix(tmp_path, script, missing, message):
    result = run_script(script, env={"PATH": _bin_without(tmp_path, *missing)})
    assert result.returncode != 0
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_scripts_are_executable_and_strict():
    scripts = [*sorted(INFRA.rglob("*.sh")), REPO_ROOT / ".ci" / "setup-tools"]
    for script in scripts:
        text = script.read_text()
        assert text.startswith("#!/usr/bin/env bash\n"), script
        assert "set -euo pipefail" in text, script
        if script.suffix == ".sh":
            assert os.access(script, os.X_OK), f"chmod +x {script}"
