"""Every infra file parses the way its tool reads it: YAML as kubectl does (YAML 1.2), Kubernetes
manifests against the Kubernetes OpenAPI schemas, Terraform as HCL2 with exactly pinned modules."""

from __future__ import annotations

import re
from pathlib import Path

import hcl2
import kubernetes_validate
import pytest

from experiments.spec import load_yaml_documents
from tests.infra.conftest import INFRA

YAML_FILES = sorted(INFRA.rglob("*.yaml"))
MANIFESTS = [INFRA / "kind" / "manifests" / "minio.yaml", INFRA / "eks" / "storageclass.yaml"]
HCL_FILES = [*sorted((INFRA / "terraform").glob("*.tf")), INFRA / "terraform" / "terraform.tfvars.example"]
KUBERNETES_VERSION = "1.32.0"  # the kind node image's (infra/kind/cluster.yaml)


def unquote(value):
    """python-hcl2 keeps string quotes ('"5.19.0"'); strip them to compare values."""
    return value[1:-1] if isinstance(value, str) and value.startswith('"') and value.endswith('"') else value


def hcl(path: Path) -> dict:
    with path.open() as handle:
        return hcl2.load(handle)


def test_there_is_infra_to_check():
    assert {p.name for p in YAML_FILES} >= {
        "cluster.yaml",
        "minio.yaml",
        "quickstart.yaml",
        "storageclass.yaml",
    }
    assert {p.name for p in HCL_FILES} >= {
        "main.tf",
        "variables.tf",
        "outputs.tf",
        "irsa.tf",
        "s3.tf",
        "versions.tf",
    }


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_yaml_parses_as_kubectl_reads_it(path):
    documents = [doc for doc in load_yaml_documents(path.read_text()) if doc is not None]
    assert documents, f"{path} holds no YAML document"
    for doc in documents:
        assert isinstance(doc, dict) and doc.get("kind"), f"{path}: every document needs a kind"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(INFRA)))
def test_manifests_are_valid_kubernetes_objects(path):
    for doc in load_yaml_documents(path.read_text()):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kind_cluster_config_pins_the_node_image_by_digest():
    (config,) = load_yaml_documents((INFRA / "kind" / "cluster.yaml").read_text())
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    images = {node["image"] for node in config["nodes"]}
    assert len(images) == 1, "every node runs the same Kubernetes"
    (image,) = images
    assert re.fullmatch(r"kindest/node:v1\.32\.\d+@sha256:[0-9a-f]{64}", image), image
    assert KUBERNETES_VERSION.startswith(image.split(":v")[1].split("@")[0].rsplit(".", 1)[0])


@pytest.mark.parametrize("path", HCL_FILES, ids=lambda p: p.name)
def test_terraform_parses_as_hcl2(path):
    assert hcl(path)


def test_terraform_modules_are_the_public_ones_pinned_exactly():
    modules = {}
    for block in hcl(INFRA / "terraform" / "main.tf")["module"]:
        for name, body in block.items():
            modules[unquote(name)] = (unquote(body["source"]), unquote(body["version"]))
    assert modules["vpc"][0] == "terraform-aws-modules/vpc/aws"
    assert modules["eks"][0] == "terraform-aws-modules/eks/aws"
    for source, version in modules.values():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), (
            f"{source} must be pinned to one release, got {version!r}"
        )


def test_every_variable_has_a_description_and_a_default():
    for block in hcl(INFRA / "terraform" / "variables.tf")["variable"]:
        for name, body in block.items():
            assert unquote(body.get("description")), f"variable {name} needs a description"
            assert "default" in body, f"variable {name} needs a sane default"


def test_outputs_cover_what_the_readme_steps_use():
    outputs = {unquote(name) for block in hcl(INFRA / "terraform" / "outputs.tf")["output"] for name in block}
    assert outputs >= {
        "cluster_name",
        "kubeconfig_command",
        "bucket",
        "install_command",
        "trainer_role_arn",
        "kserve_role_arn",
    }
