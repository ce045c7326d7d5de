"""What the cluster backend sends is a valid Katib Experiment: it round-trips through the SDK's
``V1beta1Experiment``, passes Katib's webhook rules (the spec's validator), its trials are PyTorchJobs the
Training Operator accepts, and ``--dry-run`` prints exactly that object without talking to anything."""

from __future__ import annotations

import dataclasses
import json

import pytest
from ruamel.yaml import YAML

from experiments.backends.cluster import PLACEHOLDER_IMAGE, ClusterBackend
from experiments.spec import load_yaml, parse_experiment, render_trial, validate_experiment
from experiments.spec._serialize import _deserialize
from tests.experiments.backends.cluster.katib_world import (
    NS,
    REPO_ROOT,
    cluster_experiment,
    experiment_file,
)
from tests.k8s_standin import unreachable_kubeconfig


@pytest.fixture
def manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    return ClusterBackend().manifest(cluster_experiment(tmp_path))


def test_manifest_round_trips_through_the_sdk_model(manifest):
    from kubeflow.katib import ApiClient, V1beta1Experiment

    model = _deserialize(manifest, "V1beta1Experiment")
    assert isinstance(model, V1beta1Experiment)
    assert ApiClient().sanitize_for_serialization(model) == manifest
    # JSON-clean (what goes on the wire), and Katib's string-typed fields are strings.
    assert json.loads(json.dumps(manifest)) == manifest
    lr = next(p for p in manifest["spec"]["parameters"] if p["name"] == "lr")
    assert lr["feasibleSpace"]["min"] == "1e-4" and lr["feasibleSpace"]["max"] == "3e-3"
    batch = next(p for p in manifest["spec"]["parameters"] if p["name"] == "batch_size")
    assert batch["feasibleSpace"]["list"] == ["16", "32", "64"]
    assert all(isinstance(s["value"], str) for s in manifest["spec"]["algorithm"]["algorithmSettings"])


def test_manifest_passes_katibs_webhook_rules(manifest):
    exp = parse_experiment(manifest, source="<manifest>")
    assert validate_experiment(exp, backend="cluster") == []
    assert manifest["apiVersion"] == "kubeflow.org/v1beta1" and manifest["kind"] == "Experiment"
    assert manifest["metadata"] == {"name": "quickstart", "namespace": NS}
    template = manifest["spec"]["trialTemplate"]
    assert "name" not in template["trialSpec"].get("metadata", {})  # the webhook forbids it
    declared = {t["name"] for t in template["trialParameters"]}
    text = json.dumps(template["trialSpec"])
    assert all(f"${{trialParameters.{n}}}" in text for n in declared)


def test_every_trial_is_a_pytorchjob_the_training_operator_accepts(tmp_path, manifest):
    import kubernetes_validate

    exp = parse_experiment(manifest, source="<manifest>")
    job = render_trial(exp, {"lr": "2e-4", "batch_size": "32"}, "quickstart-abcdefgh", namespace=NS)
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v1", "PyTorchJob")
    specs = job["spec"]["pytorchReplicaSpecs"]
    assert specs["Master"]["replicas"] == 1  # exactly one Master (the operator's rule; rank 0 reports)
    for role, spec in specs.items():
        containers = spec["template"]["spec"]["containers"]
        assert [c["name"] for c in containers] == ["pytorch"], role  # the operator's default container name
        assert spec["restartPolicy"] in ("Never", "OnFailure", "Always", "ExitCode")
        # Each replica's pod template is a valid core/v1 Pod at the kind node's Kubernetes version.
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"x-{role.lower()}"},
               "spec": spec["template"]["spec"]}  # fmt: skip
        kubernetes_validate.validate(pod, "1.32.0", strict=True)
        argv = containers[0]["command"]
        assert "--learning_rate=2e-4" in argv and "--global_batch_size=32" in argv
        assert "--output_dir=s3://katib-suite-models/katib/quickstart/quickstart-abcdefgh" in argv
    assert str(job["spec"]["nprocPerNode"]) == "1"


def test_namespace_is_the_flag_then_the_experiments_then_the_contexts(tmp_path, k8s_standin):
    exp = cluster_experiment(tmp_path)
    config = k8s_standin.write_kubeconfig(tmp_path / "kc", namespace="from-context")
    assert (
        ClusterBackend(namespace="team", kubeconfig=str(config)).manifest(exp)["metadata"]["namespace"]
        == "team"
    )
    assert ClusterBackend(kubeconfig=str(config)).manifest(exp)["metadata"]["namespace"] == NS
    bare = dataclasses.replace(exp, namespace=None)
    assert ClusterBackend(kubeconfig=str(config)).manifest(bare)["metadata"]["namespace"] == "from-context"
    renamed = ClusterBackend(kubeconfig=str(config)).manifest(exp, name="sweep-2")
    assert renamed["metadata"]["name"] == "sweep-2"


def test_dry_run_prints_exactly_what_submit_creates_and_talks_to_nothing(
    tmp_path, katib, platform, kubeconfig
):
    path = experiment_file(tmp_path)
    code, out, err = katib("submit", str(path), "--backend", "cluster", "--dry-run")
    assert (code, err) == (0, "")
    assert platform.requests == []  # nothing was asked of the API server
    printed = load_yaml(out)  # read as kubectl reads it
    assert YAML(typ="safe").load(out) == printed  # YAML 1.2 reads the same object
    assert 'min: "1e-4"' in out or "min: '1e-4'" in out  # quoted: kubectl would read 1e-4 as a number

    code, out2, err = katib("submit", str(path), "--backend", "cluster")
    assert code == 0, err
    (create,) = platform.calls("POST", "/experiments")
    assert create.path == f"/apis/kubeflow.org/v1beta1/namespaces/{NS}/experiments"
    assert create.body == printed
    assert create.authorization  # the kubeconfig's token was sent (its value is never kept)
    assert "katib experiment watch quickstart --backend cluster --namespace kubeflow-user" in out2


def test_dry_run_needs_no_kubeconfig_and_no_reachable_server(tmp_path, katib, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(unreachable_kubeconfig(tmp_path / "kc")))
    code, out, _ = katib("submit", str(experiment_file(tmp_path)), "--backend", "cluster", "--dry-run")
    assert code == 0 and load_yaml(out)["metadata"]["name"] == "quickstart"
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    code, out, _ = katib("submit", str(experiment_file(tmp_path)), "--backend", "cluster", "--dry-run")
    assert code == 0 and load_yaml(out)["metadata"]["namespace"] == NS


def test_dry_run_is_for_the_cluster_backend(tmp_path, katib):
    code, _, err = katib("submit", str(REPO_ROOT / "experiments" / "quickstart.yaml"), "--dry-run")
    assert code == 2 and "--dry-run prints the Experiment --backend cluster would create" in err


def test_placeholder_image_matches_infra_names_env():
    names = dict(
        line.split("=", 1)
        for line in (REPO_ROOT / "infra" / "names.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert names["KATIB_SUITE_PLACEHOLDER_IMAGE"] == PLACEHOLDER_IMAGE


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        (
            "          Master:\n            replicas: 1",
            "          Master:\n            replicas: 2",
            "Master",
        ),
        ("                  - name: pytorch\n", "                  - name: trainer\n", "pytorch"),
        ('        min: "1e-4"', "        min: 1e-4", "quote it"),
    ],
    ids=["two-masters", "no-pytorch-container", "unquoted-bound"],
)
def test_what_katib_or_the_training_operator_would_refuse_is_never_sent(
    tmp_path, katib, platform, old, new, says
):
    path = experiment_file(tmp_path)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    code, _, err = katib("submit", str(path), "--backend", "cluster")
    assert code == 1 and err.startswith("error: ") and says in err
    assert platform.requests == []  # refused before any request
