"""Checks before an Experiment is created, so what Katib would only show as a stuck or failing trial is
reported at submit, every problem at once, each with its fix:

- the API server answers (else nothing below can be asked);
- Katib's CRDs (experiments, trials) and the trial's job kind (PyTorchJob: the Training Operator) are served;
- the namespace exists and carries ``katib.kubeflow.org/metrics-collector-injection: enabled`` (without it
  Katib injects no metrics collector and every trial ends MetricsUnavailable);
- every ServiceAccount and Secret the trial template names exists there (else the pods never start), and a
  template kept in a ConfigMap is there;
- no container runs the project's placeholder image (nobody built it; ``infra/render-experiment.sh``).

A check the account may not make (403 reading a namespace, as in a Kubeflow profile) is skipped with a
warning rather than failing a submit that Katib may well accept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from experiments.backends.cluster._errors import PreflightError, Target, api_errors, status_code, translate

logger = logging.getLogger(__name__)

# infra/names.env KATIB_SUITE_PLACEHOLDER_IMAGE (tests/experiments/backends/cluster checks they agree).
PLACEHOLDER_IMAGE = "ghcr.io/katib-suite/trainer:0.1.0"
INJECTION_LABEL = "katib.kubeflow.org/metrics-collector-injection"
KATIB_API = ("kubeflow.org", "v1beta1", ("experiments", "trials"))
_FIX_PLATFORM = "install the platform with `bash infra/install.sh` (see infra/README.md)"


def _walk(node: Any) -> Iterator[Mapping[str, Any]]:
    """Every mapping in the trial spec (pod specs sit at different depths in Job, PyTorchJob, TFJob ...)."""
    if isinstance(node, Mapping):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _plain(name: Any) -> bool:
    # A name Katib fills in per trial (``${trialParameters.x}``) cannot be checked before it exists.
    return isinstance(name, str) and bool(name) and "${" not in name


def referenced_names(trial_spec: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """(ServiceAccounts, Secrets) the trial's pods need; ``optional: true`` references are left out."""
    accounts: set[str] = set()
    secrets: set[str] = set()
    for node in _walk(trial_spec):
        if "containers" in node:  # a pod spec
            account = node.get("serviceAccountName") or node.get("serviceAccount")
            if _plain(account):
                accounts.add(account)
            for ref in node.get("imagePullSecrets") or []:
                if isinstance(ref, Mapping) and _plain(ref.get("name")):
                    secrets.add(ref["name"])
            for volume in node.get("volumes") or []:
                secret = volume.get("secret") if isinstance(volume, Mapping) else None
                if (
                    isinstance(secret, Mapping)
                    and not secret.get("optional")
                    and _plain(secret.get("secretName"))
                ):
                    secrets.add(secret["secretName"])
        env_from = node.get("envFrom")
        for source in env_from if isinstance(env_from, list) else []:
            ref = source.get("secretRef") if isinstance(source, Mapping) else None
            if isinstance(ref, Mapping) and not ref.get("optional") and _plain(ref.get("name")):
                secrets.add(ref["name"])
        ref = node.get("secretKeyRef")
        if isinstance(ref, Mapping) and not ref.get("optional") and _plain(ref.get("name")):
            secrets.add(ref["name"])
    return accounts, secrets


def placeholder_problems(manifest: Mapping[str, Any]) -> list[str]:
    """The containers that still run the placeholder image (needs no cluster: dry-run shows it too)."""
    spec = ((manifest.get("spec") or {}).get("trialTemplate") or {}).get("trialSpec") or {}
    named = sorted(
        {str(n.get("name")) for n in _walk(spec) if n.get("image") == PLACEHOLDER_IMAGE and "name" in n}
    )
    if not named:
        return []
    return [
        f"container(s) {', '.join(named)} run the placeholder image {PLACEHOLDER_IMAGE}, which nobody built; "
        "build and push yours (`bash infra/docker/build.sh --image REPO:TAG --push`), then "
        "`KATIB_SUITE_IMAGE=REPO:TAG bash infra/render-experiment.sh FILE > /tmp/exp.yaml` and submit that"
    ]


def _job_api(trial_spec: Mapping[str, Any]) -> tuple[str, str, str, str] | None:
    """(group, version, plural, kind) of the trial's job kind; None for core / batch kinds."""
    api_version, kind = trial_spec.get("apiVersion"), trial_spec.get("kind")
    if not isinstance(api_version, str) or "/" not in api_version or not isinstance(kind, str):
        return None
    group, version = api_version.split("/", 1)
    if group in ("batch", "apps"):
        return None
    return group, version, kind.lower() + "s", kind


def check_reachable(client: Any, target: Target) -> None:
    from kubernetes import client as k8s

    with api_errors("reach", target):
        k8s.VersionApi(client.custom_api.api_client).get_code(_request_timeout=15)


def _served(client: Any, group: str, version: str, target: Target) -> set[str]:
    try:
        resources = client.custom_api.get_api_resources(group, version)
    except Exception as error:
        if status_code(error) == 404:
            return set()
        api = Target(f"the {group}/{version} API", target.namespace, target.context, target.server)
        raise translate(error, "discover", api) from None
    return {r.name for r in resources.resources or []}


def crd_problems(client: Any, manifest: Mapping[str, Any], target: Target) -> list[str]:
    problems = []
    group, version, plurals = KATIB_API
    served = _served(client, group, version, target)
    missing = [p for p in plurals if p not in served]
    if missing:
        problems.append(
            f"Katib is not installed: the API server serves no {', '.join(f'{p}.{group}/{version}' for p in missing)}; "
            f"{_FIX_PLATFORM}, or check with `kubectl get crd experiments.kubeflow.org`"
        )
    trial_spec = ((manifest.get("spec") or {}).get("trialTemplate") or {}).get("trialSpec") or {}
    job = _job_api(trial_spec)
    if job is not None:
        jgroup, jversion, plural, kind = job
        if plural not in _served(client, jgroup, jversion, target):
            owner = "the Training Operator" if jgroup == "kubeflow.org" else f"the {kind} controller"
            problems.append(
                f"the trials are {kind}s but the API server serves no {plural}.{jgroup}/{jversion}: "
                f"{owner} is not installed; {_FIX_PLATFORM}, or check with `kubectl get crd {plural}.{jgroup}`"
            )
    return problems


def _read(call, *args) -> tuple[Any, int | None]:
    try:
        return call(*args), None
    except Exception as error:
        code = status_code(error)
        if code in (403, 404):
            return None, code
        raise


def namespace_problems(client: Any, namespace: str, target: Target) -> list[str]:
    with api_errors("read", Target(f"namespace {namespace}", namespace, target.context, target.server)):
        ns, code = _read(client.core_api.read_namespace, namespace)
    label = f"{INJECTION_LABEL}=enabled"
    if code == 404:
        return [
            f"namespace {namespace} does not exist; create it with `kubectl create namespace {namespace} && "
            f"kubectl label namespace {namespace} {label}` ({_FIX_PLATFORM}), or pass --namespace"
        ]
    if code == 403:
        logger.warning(
            "could not check that namespace %s carries %s (reading namespaces is forbidden); without it "
            "Katib collects no metrics and every trial ends MetricsUnavailable",
            namespace,
            label,
        )
        return []
    labels = (ns.metadata.labels or {}) if ns is not None and ns.metadata is not None else {}
    if labels.get(INJECTION_LABEL) != "enabled":
        return [
            f"namespace {namespace} lacks the label {label}: Katib would inject no metrics collector and "
            f"every trial would end MetricsUnavailable; run `kubectl label namespace {namespace} {label}`"
        ]
    return []


def reference_problems(client: Any, manifest: Mapping[str, Any], namespace: str, target: Target) -> list[str]:
    trial_spec = ((manifest.get("spec") or {}).get("trialTemplate") or {}).get("trialSpec") or {}
    accounts, secrets = referenced_names(trial_spec)
    problems = []
    checks = [
        ("ServiceAccount", n, client.core_api.read_namespaced_service_account) for n in sorted(accounts)
    ]
    checks += [("Secret", n, client.core_api.read_namespaced_secret) for n in sorted(secrets)]
    for kind, name, read in checks:
        with api_errors(
            "read", Target(f"{kind} {namespace}/{name}", namespace, target.context, target.server)
        ):
            _, code = _read(read, name, namespace)
        if code == 404:
            fix = (
                f"create it with `bash infra/install.sh` or `kubectl -n {namespace} create serviceaccount {name}`"
                if kind == "ServiceAccount"
                else f"create it with `bash infra/install.sh` or `kubectl -n {namespace} create secret generic {name} ...`"
            )
            problems.append(
                f"the trial template uses {kind} {name!r}, which namespace {namespace} lacks (the trial pods "
                f"would never start); {fix}"
            )
        elif code == 403:
            logger.warning("could not check that %s %s/%s exists (forbidden)", kind, namespace, name)
    return problems


def config_map_problems(
    client: Any, manifest: Mapping[str, Any], namespace: str, target: Target
) -> list[str]:
    """A trial template kept in a ConfigMap (``trialTemplate.configMap``) must exist where it says."""
    source = ((manifest.get("spec") or {}).get("trialTemplate") or {}).get("configMap") or {}
    name, where = source.get("configMapName"), source.get("configMapNamespace") or namespace
    if not _plain(name):
        return []
    with api_errors("read", Target(f"ConfigMap {where}/{name}", where, target.context, target.server)):
        found, code = _read(client.core_api.read_namespaced_config_map, name, where)
    if code == 404:
        return [
            f"the trial template is read from ConfigMap {where}/{name}, which does not exist; create it "
            f"(`kubectl -n {where} create configmap {name} --from-file=TEMPLATE.yaml`) or inline trialSpec"
        ]
    path = source.get("templatePath")
    if found is not None and path and path not in (found.data or {}):
        return [
            f"ConfigMap {where}/{name} has no key {path!r} (its keys: {sorted(found.data or {})}); fix templatePath"
        ]
    return []


def preflight(client: Any, manifest: Mapping[str, Any], namespace: str, target: Target) -> None:
    """Raise :class:`PreflightError` listing every problem; the API server must answer first."""
    check_reachable(client, target)
    problems = placeholder_problems(manifest)
    problems += crd_problems(client, manifest, target)
    problems += namespace_problems(client, namespace, target)
    problems += reference_problems(client, manifest, namespace, target)
    problems += config_map_problems(client, manifest, namespace, target)
    if problems:
        name = (manifest.get("metadata") or {}).get("name")
        raise PreflightError(
            f"the cluster is not ready for experiment {namespace}/{name} ({len(problems)} problem(s)); "
            "nothing was created:\n" + "\n".join(f"  - {p}" for p in problems)
        )
