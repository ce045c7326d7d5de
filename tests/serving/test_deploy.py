"""The InferenceService (kserve SDK models) and its create / patch / canary / rollback / wait verbs,
exercised through KServeClient against the stand-in Kubernetes API server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving.cli import main
from serving.deploy import (
    PREVIOUS_ANNOTATION,
    Deployer,
    DeployOptions,
    build_inference_service,
    from_dict,
    to_dict,
)
from serving.promote_errors import DeployError, PromoteError
from tests.k8s_standin import K8sStandin
from tests.serving.conftest import TrialSpec

ISVC = "serving.kserve.io/v1beta1"
NS = "team"


def options(**overrides) -> DeployOptions:
    base = {"name": "roberta-yahoo", "namespace": NS, "timeout": 5.0, "poll_interval": 0.05}
    return DeployOptions(**{**base, **overrides})


def mark_ready(standin: K8sStandin, obj: dict) -> None:
    """Play KServe's controller: the InferenceService becomes Ready with a URL."""
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]

    def ready(stored: dict) -> None:
        stored["status"] = {
            "url": f"http://{name}.{namespace}.example.com",
            "conditions": [{"type": "Ready", "status": "True"}],
        }

    standin.update(ISVC, "inferenceservices", name, namespace, ready)


def deployer(kubeconfig_path: Path) -> Deployer:
    return Deployer.connect(str(kubeconfig_path))


def test_manifest_round_trips_through_the_kserve_models() -> None:
    isvc = build_inference_service(
        "s3://models/roberta-yahoo/v3",
        options(istio_sidecar=False, logger_url="http://logger.team", min_replicas=2, max_replicas=4, gpus=1),
        "v3",
    )
    data = to_dict(isvc)
    assert to_dict(from_dict(json.loads(json.dumps(data)))) == data
    predictor = data["spec"]["predictor"]
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "huggingface"}
    assert model["storageUri"] == "s3://models/roberta-yahoo/v3/"
    assert model["args"] == [
        "--model_name=roberta-yahoo",
        "--backend=huggingface",
        "--task=sequence_classification",
        "--max_model_len=512",
    ]
    assert model["resources"]["limits"] == {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"}
    assert (predictor["serviceAccountName"], predictor["minReplicas"], predictor["maxReplicas"]) == (
        "aws-sa",
        2,
        4,
    )
    assert predictor["logger"] == {"mode": "all", "url": "http://logger.team"}
    annotations = data["metadata"]["annotations"]
    assert annotations["sidecar.istio.io/inject"] == "false"
    assert annotations["serving.kserve.io/deploymentMode"] == "RawDeployment"
    serverless = to_dict(
        build_inference_service("s3://m/x/v1/", options(deployment_mode="Serverless", canary=10))
    )
    assert "annotations" not in serverless["metadata"] or "serving.kserve.io/deploymentMode" not in (
        serverless["metadata"]["annotations"] or {}
    )
    assert serverless["spec"]["predictor"]["canaryTrafficPercent"] == 10


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"canary": 10}, "--canary needs Serverless (Knative) mode; RawDeployment has no traffic split"),
        ({"name": "Roberta_Yahoo"}, "must be a DNS-1035 label"),
        ({"min_replicas": 3, "max_replicas": 2}, "replicas must satisfy"),
    ],
)
def test_bad_options_are_refused_before_any_request(overrides: dict, expected: str) -> None:
    with pytest.raises(PromoteError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        build_inference_service("s3://m/x/v1/", options(**overrides))
    with pytest.raises(PromoteError, match="needs the model on S3"):
        build_inference_service("/tmp/models/x/v1", options())


def test_create_waits_for_ready_then_patch_keeps_the_previous_version_and_rollback_restores_it(
    k8s_standin: K8sStandin, kubeconfig: Path
) -> None:
    k8s_standin.on("POST", "inferenceservices", mark_ready)
    client = deployer(kubeconfig)
    first = build_inference_service("s3://m/roberta-yahoo/v1/", options(), "v1")
    deployed = client.apply(first, options())
    assert deployed["status"]["url"] == f"http://roberta-yahoo.{NS}.example.com"
    posted = k8s_standin.calls("POST", "/inferenceservices")
    assert (
        len(posted) == 1
        and posted[0].body["spec"]["predictor"]["model"]["storageUri"] == "s3://m/roberta-yahoo/v1/"
    )

    client.apply(build_inference_service("s3://m/roberta-yahoo/v2/", options(), "v2"), options())
    assert k8s_standin.calls("PATCH", "/inferenceservices/roberta-yahoo")
    stored = k8s_standin.get(ISVC, "inferenceservices", "roberta-yahoo", NS)
    assert stored["spec"]["predictor"]["model"]["storageUri"] == "s3://m/roberta-yahoo/v2/"
    assert stored["metadata"]["annotations"][PREVIOUS_ANNOTATION] == "s3://m/roberta-yahoo/v1/"

    client.rollback("roberta-yahoo", NS, timeout=5, poll_interval=0.05)
    stored = k8s_standin.get(ISVC, "inferenceservices", "roberta-yahoo", NS)
    assert stored["spec"]["predictor"]["model"]["storageUri"] == "s3://m/roberta-yahoo/v1/"
    assert stored["metadata"]["annotations"][PREVIOUS_ANNOTATION] == "s3://m/roberta-yahoo/v2/"


def test_canary_patches_the_traffic_split_in_serverless_and_rollback_drops_it(
    k8s_standin: K8sStandin, kubeconfig: Path
) -> None:
    k8s_standin.on("POST", "inferenceservices", mark_ready)
    client = deployer(kubeconfig)
    serverless = options(deployment_mode="Serverless")
    client.apply(build_inference_service("s3://m/r/v1/", serverless, "v1"), serverless)
    canary = options(deployment_mode="Serverless", canary=10)
    client.apply(build_inference_service("s3://m/r/v2/", canary, "v2"), canary)
    stored = k8s_standin.get(ISVC, "inferenceservices", "roberta-yahoo", NS)
    assert stored["spec"]["predictor"]["canaryTrafficPercent"] == 10
    client.rollback("roberta-yahoo", NS, timeout=5, poll_interval=0.05)
    stored = k8s_standin.get(ISVC, "inferenceservices", "roberta-yahoo", NS)
    assert "canaryTrafficPercent" not in stored["spec"]["predictor"]
    assert stored["spec"]["predictor"]["model"]["storageUri"] == "s3://m/r/v1/"


def test_canary_on_an_existing_raw_deployment_stops_without_a_patch(
    k8s_standin: K8sStandin, kubeconfig: Path
) -> None:
    k8s_standin.on("POST", "inferenceservices", mark_ready)
    client = deployer(kubeconfig)
    client.apply(build_inference_service("s3://m/r/v1/", options(), "v1"), options())
    canary = options(deployment_mode="Serverless", canary=10)
    with pytest.raises(PromoteError, match="runs in RawDeployment mode, which has no traffic split"):
        client.apply(build_inference_service("s3://m/r/v2/", canary, "v2"), canary)
    assert not k8s_standin.calls("PATCH")


def test_409_on_create_falls_back_to_patch(k8s_standin: K8sStandin, kubeconfig: Path) -> None:
    # Someone else created it between our GET (404) and our POST (409 AlreadyExists).
    existing = to_dict(build_inference_service("s3://m/r/v1/", options(), "v1"))
    existing["status"] = {"conditions": [{"type": "Ready", "status": "True"}], "url": "http://r"}
    k8s_standin.add(ISVC, "inferenceservices", existing, namespace=NS)
    k8s_standin.fail(404, "GET", r"/inferenceservices/roberta-yahoo$", times=1)
    deployer(kubeconfig).apply(build_inference_service("s3://m/r/v2/", options(), "v2"), options())
    assert [r.method for r in k8s_standin.calls(path_contains="/inferenceservices")][:3] == [
        "GET",
        "POST",
        "GET",
    ]
    stored = k8s_standin.get(ISVC, "inferenceservices", "roberta-yahoo", NS)
    assert stored["spec"]["predictor"]["model"]["storageUri"] == "s3://m/r/v2/"


@pytest.mark.parametrize(
    ("status", "method", "expected"),
    [
        (403, "GET", "answered 403 (forbidden); the kube context's account needs RBAC"),
        (404, "POST", "not found (404); check --namespace, and that KServe's CRDs are installed"),
        (409, "PATCH", "conflict (409)"),
    ],
)
def test_api_errors_are_clear(
    k8s_standin: K8sStandin, kubeconfig: Path, status: int, method: str, expected: str
) -> None:
    if method == "PATCH":
        k8s_standin.on("POST", "inferenceservices", mark_ready)
        deployer(kubeconfig).apply(build_inference_service("s3://m/r/v1/", options(), "v1"), options())
    k8s_standin.fail(status, method, "/inferenceservices")
    with pytest.raises(DeployError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        deployer(kubeconfig).apply(build_inference_service("s3://m/r/v2/", options(), "v2"), options())


def test_wait_times_out_with_the_reason(k8s_standin: K8sStandin, kubeconfig: Path) -> None:
    slow = options(timeout=0.3)
    with pytest.raises(DeployError, match=r"is not Ready after 0\.3s"):
        deployer(kubeconfig).apply(build_inference_service("s3://m/r/v1/", slow, "v1"), slow)


def test_rollback_without_history_or_object_is_clear(
    k8s_standin: K8sStandin, kubeconfig: Path, capsys
) -> None:
    code = main(["--rollback", "roberta-yahoo", "--namespace", NS, "--kubeconfig", str(kubeconfig)])
    assert code == 4 and "no InferenceService team/roberta-yahoo to roll back" in capsys.readouterr().err
    k8s_standin.on("POST", "inferenceservices", mark_ready)
    deployer(kubeconfig).apply(build_inference_service("s3://m/r/v1/", options(), "v1"), options())
    code = main(["--rollback", "roberta-yahoo", "--namespace", NS, "--kubeconfig", str(kubeconfig)])
    assert code == 4 and "has no previous version recorded" in capsys.readouterr().err


def test_promote_and_deploy_end_to_end(
    recorded, bucket: str, k8s_standin: K8sStandin, kubeconfig: Path, capsys, tmp_path: Path
) -> None:
    storage = recorded("exp", [TrialSpec("exp-a", (0.5, 0.6))])
    k8s_standin.on("POST", "inferenceservices", mark_ready)
    base = ["exp", "--to", f"s3://{bucket}/models/roberta-yahoo", "--storage", storage, "--deploy",
            "--namespace", NS, "--kubeconfig", str(kubeconfig)]  # fmt: skip
    code = main([*base, "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "kind: InferenceService" in out and "storageUri: s3://" in out and not k8s_standin.requests
    code = main(base)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"is Ready at http://roberta-yahoo.{NS}.example.com" in out
    assert "curl -H 'Content-Type: application/json'" in out and "/v2/models/roberta-yahoo/infer" in out
    posted = k8s_standin.calls("POST", "/inferenceservices")[0].body
    assert posted["spec"]["predictor"]["model"]["storageUri"] == f"s3://{bucket}/models/roberta-yahoo/v1/"


def test_unreachable_api_server_is_one_line(tmp_path: Path, recorded, bucket: str, capsys) -> None:
    from tests.k8s_standin import unreachable_kubeconfig

    storage = recorded("exp", [TrialSpec("exp-a", (0.5,))])
    config = unreachable_kubeconfig(tmp_path / "kc")
    code = main(
        ["exp", "--to", f"s3://{bucket}/m/r", "--storage", storage, "--deploy", "--kubeconfig", str(config)]
    )
    err = capsys.readouterr().err
    assert code == 4 and "did not answer" in err and "Traceback" not in err


def test_a_silent_api_server_fails_the_deploy_instead_of_hanging(tmp_path: Path, monkeypatch) -> None:
    from experiments import _kube
    from serving.deploy import DeployError
    from tests.k8s_standin import silent_api_server

    monkeypatch.setattr(_kube, "REQUEST_TIMEOUT", 0.5)  # the default the Deployer's clients take
    with silent_api_server(tmp_path / "kc") as config:
        client = deployer(config)
        for api in (client.client.api_instance, client.client.core_api):
            assert api.api_client.rest_client._katib_suite_timeout == 0.5
        with pytest.raises(DeployError, match="did not answer"):
            client.get("roberta-yahoo", "kubeflow-user")
