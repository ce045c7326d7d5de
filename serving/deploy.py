"""The InferenceService for a promoted version, built with the kserve SDK models, and its deploy verbs.

    isvc = build_inference_service("s3://models/roberta-yahoo/v3/", DeployOptions(name="roberta-yahoo"))
    print(to_yaml(isvc))                                    # --dry-run
    url = Deployer(KServeClient()).apply(isvc, options)     # create or patch, then wait for Ready
    Deployer(KServeClient()).rollback("roberta-yahoo", "kubeflow-user")

KServe facts (reference/kserve.md): ``--backend=huggingface`` (else vLLM claims RoBERTa),
``--max_model_len=512`` (RoBERTa's 514 positions overflow), storageUri with a trailing slash (kserve#3776),
canaryTrafficPercent only in Serverless (Knative) mode. The previous storageUri is kept in an annotation
so ``--rollback`` can restore it in either mode.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from serving.promote_errors import DeployError, PromoteError

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
ISTIO_ANNOTATION = "sidecar.istio.io/inject"
VERSION_ANNOTATION = "serving.katib-suite.io/model-version"
PREVIOUS_ANNOTATION = "serving.katib-suite.io/previous-storage-uri"
MODES = ("Serverless", "RawDeployment", "Standard")
PROTOCOLS = ("v1", "v2")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class DeployOptions:
    name: str
    namespace: str = "kubeflow-user"  # a Kubeflow profile namespace
    service_account: str = "aws-sa"  # carries the S3 secret, or an IRSA role on EKS
    deployment_mode: str = "RawDeployment"
    protocol: str = "v2"
    istio_sidecar: bool = True  # False adds sidecar.istio.io/inject: "false"
    cpu: str = "1"
    memory: str = "2Gi"
    gpus: int = 0
    min_replicas: int = 1
    max_replicas: int = 1
    logger_url: str | None = None  # spec.predictor.logger
    logger_mode: str = "all"
    canary: int | None = None
    timeout: float = 600.0
    poll_interval: float = 5.0
    extra_labels: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        problems = []
        if not _DNS_1035.match(self.name):
            problems.append(
                f"--name {self.name!r} must be a DNS-1035 label (lower-case letters, digits, '-', "
                "starting with a letter, at most 63 characters)"
            )
        if self.deployment_mode not in MODES:
            problems.append(f"--deployment-mode must be one of {list(MODES)}; got: {self.deployment_mode}")
        if self.protocol not in PROTOCOLS:
            problems.append(f"--protocol must be one of {list(PROTOCOLS)}; got: {self.protocol}")
        if self.min_replicas < 0 or self.max_replicas < max(1, self.min_replicas):
            problems.append(
                f"replicas must satisfy 0 <= --min-replicas <= --max-replicas and --max-replicas >= 1; "
                f"got ({self.min_replicas}, {self.max_replicas})"
            )
        if self.canary is not None and not 0 <= self.canary <= 100:
            problems.append(f"--canary must be a percentage 0..100; got: {self.canary}")
        if self.canary is not None and self.deployment_mode != "Serverless":
            problems.append(
                f"--canary needs Serverless (Knative) mode; {self.deployment_mode} has no traffic split. "
                "Deploy without --canary, or with --deployment-mode Serverless on a cluster with Knative"
            )
        if self.logger_mode not in ("all", "request", "response"):
            problems.append(f"--logger-mode must be one of all, request, response; got: {self.logger_mode}")
        if problems:
            raise PromoteError("; ".join(problems))


def build_inference_service(storage_uri: str, options: DeployOptions, version: str | None = None) -> Any:
    from kserve import (
        V1beta1InferenceService,
        V1beta1InferenceServiceSpec,
        V1beta1LoggerSpec,
        V1beta1ModelFormat,
        V1beta1ModelSpec,
        V1beta1PredictorSpec,
    )
    from kubernetes.client import V1ObjectMeta, V1ResourceRequirements

    options.check()
    if not storage_uri.startswith("s3://"):
        raise PromoteError(
            f"--deploy needs the model on S3, but it is at {storage_uri}; KServe's storage initializer cannot "
            "read this machine's disk. Promote with --to s3://bucket/models/NAME, or use --serve locally"
        )
    annotations = {}
    if options.deployment_mode != "Serverless":
        annotations[MODE_ANNOTATION] = options.deployment_mode
    if not options.istio_sidecar:
        annotations[ISTIO_ANNOTATION] = "false"
    if version:
        annotations[VERSION_ANNOTATION] = version
    amounts = {"cpu": options.cpu, "memory": options.memory}
    if options.gpus:
        amounts["nvidia.com/gpu"] = str(options.gpus)
    model = V1beta1ModelSpec(
        model_format=V1beta1ModelFormat(name="huggingface"),
        protocol_version=options.protocol,
        storage_uri=storage_uri.rstrip("/") + "/",
        args=[
            f"--model_name={options.name}",
            "--backend=huggingface",
            "--task=sequence_classification",
            "--max_model_len=512",
        ],
        resources=V1ResourceRequirements(requests=dict(amounts), limits=dict(amounts)),
    )
    predictor = V1beta1PredictorSpec(
        service_account_name=options.service_account,
        min_replicas=options.min_replicas,
        max_replicas=options.max_replicas,
        model=model,
        canary_traffic_percent=options.canary,
        logger=V1beta1LoggerSpec(url=options.logger_url, mode=options.logger_mode)
        if options.logger_url
        else None,
    )
    labels = {"app.kubernetes.io/managed-by": "promote-best", **options.extra_labels}
    return V1beta1InferenceService(
        api_version=API_VERSION,
        kind=KIND,
        metadata=V1ObjectMeta(
            name=options.name, namespace=options.namespace, annotations=annotations or None, labels=labels
        ),
        spec=V1beta1InferenceServiceSpec(predictor=predictor),
    )


def to_dict(isvc: Any) -> dict[str, Any]:
    """The manifest with Kubernetes' camelCase keys (kserve's ApiClient; the kubernetes >= 31 one would
    serialise kserve models by their snake_case attribute names, which the API server drops)."""
    from kserve import ApiClient

    return ApiClient().sanitize_for_serialization(isvc)


class _Manifest(dict):
    """A camelCase manifest that ``KServeClient.create`` / ``patch`` accept (they read ``.api_version``)."""

    api_version = API_VERSION


def from_dict(data: Any, klass: str = "V1beta1InferenceService") -> Any:
    """A dict (from YAML or the API server) back to the kserve SDK models; kubernetes types by its client."""
    import kserve.models as kserve_models
    from kubernetes.client import ApiClient

    if data is None:
        return None
    if klass.startswith("list["):
        inner = klass[5:-1]
        return [from_dict(item, inner) for item in data]
    if klass.startswith("dict("):
        inner = klass[5:-1].split(", ", 1)[1]
        return {k: from_dict(v, inner) for k, v in data.items()}
    if klass in ("str", "int", "float", "bool", "object"):
        return data
    if klass.startswith("V1beta1") and hasattr(kserve_models, klass):
        cls = getattr(kserve_models, klass)
        kwargs = {
            attr: from_dict(data[cls.attribute_map[attr]], kind)
            for attr, kind in cls.openapi_types.items()
            if cls.attribute_map[attr] in data
        }
        return cls(**kwargs)
    return ApiClient()._ApiClient__deserialize(data, klass)


def to_yaml(isvc: Any) -> str:
    """YAML that kubectl reads back as the same object (the spec package's dumper quotes ambiguous strings)."""
    from experiments.spec import dump_yaml

    return dump_yaml(to_dict(isvc))


def curl_line(
    url: str, name: str, protocol: str, text: str = "What is the best laptop for programming?"
) -> str:
    import json

    if protocol == "v1":
        body = json.dumps({"instances": [text]})
        path = f"/v1/models/{name}:predict"
    else:
        body = json.dumps(
            {"inputs": [{"name": "input-0", "shape": [1], "datatype": "BYTES", "data": [text]}]}
        )
        path = f"/v2/models/{name}/infer"
    return f"curl -H 'Content-Type: application/json' -d '{body}' {url.rstrip('/')}{path}"


def _status_code(error: BaseException) -> int | None:
    """KServeClient wraps the kubernetes ApiException in a RuntimeError; the code is on the original."""
    current: BaseException | None = error
    while current is not None:
        status = getattr(current, "status", None)
        if isinstance(status, int):
            return status
        current = current.__cause__ or current.__context__
    return None


def _api_error(error: BaseException, verb: str, name: str, namespace: str) -> DeployError:
    code = _status_code(error)
    what = f"cannot {verb} InferenceService {namespace}/{name}"
    if code in (401, 403):
        return DeployError(
            f"{what}: the API server answered {code} (forbidden); the kube context's account needs RBAC "
            f"on inferenceservices.serving.kserve.io in namespace {namespace} (a Kubeflow profile "
            "contributor role), or pick the right --context / --namespace"
        )
    if code == 404:
        return DeployError(
            f"{what}: not found (404); check --namespace, and that KServe's CRDs are installed "
            "(kubectl get crd inferenceservices.serving.kserve.io)"
        )
    if code == 409:
        return DeployError(f"{what}: conflict (409), it changed meanwhile; run the command again")
    if code is None:
        return DeployError(
            f"{what}: the Kubernetes API server did not answer ({type(error).__name__}); check the kube "
            "context (kubectl cluster-info) and the network"
        )
    return DeployError(
        f"{what}: the API server answered {code}; see `kubectl describe isvc {name} -n {namespace}`"
    )


def _ready(isvc: dict[str, Any]) -> tuple[bool, str]:
    for condition in (isvc.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            ok = str(condition.get("status", "")).lower() == "true"
            return ok, condition.get("message") or condition.get("reason") or ""
    return False, "no Ready condition yet"


class Deployer:
    """Create / patch / wait / rollback through ``KServeClient``."""

    def __init__(self, client: Any):
        self.client = client

    @staticmethod
    def connect(config_file: str | None = None, context: str | None = None) -> Deployer:
        from kserve import KServeClient

        from experiments._kube import bound_requests

        try:
            kserve = KServeClient(config_file=config_file, context=context)
        except Exception as error:  # kubernetes' config loader raises several types for one problem
            raise DeployError(
                f"cannot load the kube config ({str(error).splitlines()[0][:160]}); set KUBECONFIG or pass "
                "--kubeconfig / --context"
            ) from None
        # Each of KServeClient's APIs has a client of its own; none may wait forever on a silent server.
        for api in vars(kserve).values():
            if hasattr(api, "api_client"):
                bound_requests(api.api_client)
        return Deployer(kserve)

    def get(self, name: str, namespace: str) -> dict[str, Any] | None:
        try:
            return self.client.get(name, namespace=namespace)
        except RuntimeError as error:
            if _status_code(error) == 404:
                return None
            raise _api_error(error, "read", name, namespace) from None
        except Exception as error:
            raise _api_error(error, "read", name, namespace) from None

    def apply(self, isvc: Any, options: DeployOptions) -> dict[str, Any]:
        """Create the InferenceService, or patch it (remembering the previous storageUri); wait for Ready."""
        name, namespace = options.name, options.namespace
        current = self.get(name, namespace)
        if current is None:
            try:
                self.client.create(_Manifest(to_dict(isvc)), namespace=namespace)
            except Exception as error:
                if _status_code(error) != 409:
                    raise _api_error(error, "create", name, namespace) from None
                current = self.get(name, namespace)  # created meanwhile: patch it instead
        if current is not None:
            self._check_mode(current, options)
            previous = (((current.get("spec") or {}).get("predictor") or {}).get("model") or {}).get(
                "storageUri"
            )
            if previous and previous != isvc.spec.predictor.model.storage_uri:
                isvc.metadata.annotations = {
                    **(isvc.metadata.annotations or {}),
                    PREVIOUS_ANNOTATION: previous,
                }
            self._patch(name, namespace, isvc)
        return self.wait(name, namespace, options.timeout, options.poll_interval)

    def _check_mode(self, current: dict[str, Any], options: DeployOptions) -> None:
        mode = ((current.get("metadata") or {}).get("annotations") or {}).get(MODE_ANNOTATION, "Serverless")
        if options.canary is not None and mode != "Serverless":
            raise PromoteError(
                f"InferenceService {options.namespace}/{options.name} runs in {mode} mode, which has no traffic "
                "split; --canary needs Serverless (Knative). Deploy without --canary"
            )

    def _patch(self, name: str, namespace: str, body: Any) -> None:
        try:
            self.client.patch(name, _Manifest(to_dict(body)), namespace=namespace)
        except Exception as error:
            raise _api_error(error, "patch", name, namespace) from None

    def wait(self, name: str, namespace: str, timeout: float, poll_interval: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        message = ""
        while True:
            current = self.get(name, namespace)
            if current is None:
                raise DeployError(f"InferenceService {namespace}/{name} disappeared while waiting for it")
            ready, message = _ready(current)
            if ready:
                return current
            if time.monotonic() >= deadline:
                raise DeployError(
                    f"InferenceService {namespace}/{name} is not Ready after {timeout:g}s ({message}); see "
                    f"`kubectl describe isvc {name} -n {namespace}` and the predictor pod's logs, or wait "
                    "longer with --timeout"
                )
            time.sleep(poll_interval)

    def rollback(
        self, name: str, namespace: str, timeout: float = 600.0, poll_interval: float = 5.0
    ) -> dict[str, Any]:
        """Point the InferenceService back at its previous version and drop any canary split."""
        current = self.get(name, namespace)
        if current is None:
            raise DeployError(
                f"no InferenceService {namespace}/{name} to roll back; check the name and --namespace "
                f"(kubectl get isvc -n {namespace})"
            )
        annotations = dict((current.get("metadata") or {}).get("annotations") or {})
        previous = annotations.get(PREVIOUS_ANNOTATION)
        if not previous:
            raise DeployError(
                f"InferenceService {namespace}/{name} has no previous version recorded (annotation "
                f"{PREVIOUS_ANNOTATION}); it was deployed once, or not by promote-best. Deploy the version "
                "you want with promote-best --trial ... --deploy"
            )
        model = ((current.get("spec") or {}).get("predictor") or {}).get("model") or {}
        now_uri = model.get("storageUri")
        patch = {
            "metadata": {
                "annotations": {PREVIOUS_ANNOTATION: now_uri, VERSION_ANNOTATION: _version_of(previous)}
            },
            # Merge patch: null removes canaryTrafficPercent, so all traffic goes to the restored version.
            "spec": {"predictor": {"canaryTrafficPercent": None, "model": {"storageUri": previous}}},
        }
        self._patch_dict(name, namespace, patch)
        return self.wait(name, namespace, timeout, poll_interval)

    def _patch_dict(self, name: str, namespace: str, patch: dict[str, Any]) -> None:
        from kserve import constants

        try:
            self.client.api_instance.patch_namespaced_custom_object(
                constants.KSERVE_GROUP,
                "v1beta1",
                namespace,
                constants.KSERVE_PLURAL_INFERENCESERVICE,
                name,
                patch,
            )
        except Exception as error:
            raise _api_error(error, "patch", name, namespace) from None


def _version_of(uri: str) -> str:
    match = re.search(r"/(v\d+)/?$", uri)
    return match.group(1) if match else ""


def url_of(isvc: dict[str, Any]) -> str | None:
    return (isvc.get("status") or {}).get("url")
