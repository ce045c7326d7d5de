"""Which cluster and namespace: the kubeconfig (``--kubeconfig``, ``$KUBECONFIG``, ``~/.kube/config``) and its
context (``--context`` or the current one), as kubectl picks them. Reading the file talks to nothing, so
``--dry-run`` can resolve the namespace the same way ``submit`` does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments._kube import bound_requests
from experiments.backends.cluster._errors import KubeconfigError

DEFAULT_KUBECONFIG = Path("~/.kube/config")


@dataclass(frozen=True)
class KubeTarget:
    """The resolved connection settings (no secret in here: the credentials stay in the Configuration)."""

    kubeconfig: str | None  # None: in-cluster service account
    context: str | None
    namespace: str
    server: str | None = None


def kubeconfig_paths(kubeconfig: str | None) -> list[Path]:
    """The files kubectl would read: ``--kubeconfig``, else every path in ``$KUBECONFIG``, else the default."""
    if kubeconfig:
        return [Path(kubeconfig).expanduser()]
    env = os.environ.get("KUBECONFIG", "")
    paths = [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return paths or [DEFAULT_KUBECONFIG.expanduser()]


def _in_cluster() -> bool:
    return (
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        and Path("/var/run/secrets/kubernetes.io/serviceaccount/token").is_file()
    )


def _existing(kubeconfig: str | None) -> str:
    """The kubeconfig file(s) to load, several joined with ``os.pathsep`` (the loader merges them as kubectl
    does); "" means in-cluster. The kubernetes loader's own default is read from $KUBECONFIG at import time,
    so the paths are always passed explicitly."""
    paths = kubeconfig_paths(kubeconfig)
    found = [str(p) for p in paths if p.is_file()]
    if found:
        return os.pathsep.join(found)
    if not kubeconfig and _in_cluster():
        return ""
    names = ", ".join(str(p) for p in paths)
    raise KubeconfigError(
        f"no kubeconfig found (looked for {names}); point --kubeconfig or $KUBECONFIG at your cluster's, e.g. "
        "`kind export kubeconfig --name katib-suite` or `aws eks update-kubeconfig --name katib-suite` "
        "(see infra/README.md)"
    )


def _contexts(config_file: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(contexts, the current one) of the merged kubeconfig, read as the kubernetes loader reads it."""
    import yaml
    from kubernetes.config import ConfigException
    from kubernetes.config.kube_config import KubeConfigMerger

    try:
        node = KubeConfigMerger(config_file).config
    except (ConfigException, yaml.YAMLError, OSError, ValueError, TypeError, AttributeError) as error:
        first = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise KubeconfigError(
            f"cannot read the kubeconfig {config_file}: {first}; fix the file or pass another with --kubeconfig"
        ) from None
    data = getattr(node, "value", None)
    if not isinstance(data, dict):
        raise KubeconfigError(
            f"the kubeconfig {config_file} holds no configuration; pass another with --kubeconfig"
        )
    # Merged entries are the loader's ConfigNode wrappers around the dicts.
    contexts = [getattr(c, "value", c) for c in data.get("contexts") or []]
    contexts = [c for c in contexts if isinstance(c, dict)]
    current = data.get("current-context")
    return contexts, next((c for c in contexts if c.get("name") == current), None)


def resolve(
    namespace: str | None = None, context: str | None = None, kubeconfig: str | None = None
) -> KubeTarget:
    """Namespace by kubectl's rule: ``--namespace``, else the context's namespace, else ``default``."""
    config_file = _existing(kubeconfig)
    if config_file == "":  # in-cluster: the pod's own namespace
        ns_file = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        own = ns_file.read_text().strip() if ns_file.is_file() else "default"
        return KubeTarget(None, None, namespace or own)
    contexts, active = _contexts(config_file)
    chosen = active
    if context is not None:
        chosen = next((c for c in contexts if c.get("name") == context), None)
        if chosen is None:
            known = ", ".join(sorted(str(c.get("name")) for c in contexts)) or "none"
            raise KubeconfigError(
                f"--context {context} is not in the kubeconfig (contexts: {known}); "
                "pick one of those (`kubectl config get-contexts`)"
            )
    if chosen is None:
        raise KubeconfigError(
            "the kubeconfig has no current context; pass --context NAME (`kubectl config get-contexts`)"
        )
    from_context = (chosen.get("context") or {}).get("namespace")
    return KubeTarget(config_file, chosen.get("name"), namespace or from_context or "default")


def configuration(target: KubeTarget) -> Any:
    """A ``kubernetes.client.Configuration`` for ``target`` (credentials loaded here, never logged)."""
    from kubernetes import client, config

    cfg = client.Configuration()
    try:
        if target.kubeconfig is None and target.context is None:
            config.load_incluster_config(client_configuration=cfg)
        else:
            config.load_kube_config(
                config_file=target.kubeconfig, context=target.context, client_configuration=cfg
            )
    except (config.ConfigException, OSError, ValueError, TypeError) as error:
        raise KubeconfigError(
            f"cannot load context {target.context} from the kubeconfig: "
            f"{str(error).splitlines()[0][:160] if str(error) else type(error).__name__}; "
            "fix its credentials (`kubectl config view`) or pass another --context / --kubeconfig"
        ) from None
    return cfg


def connect(target: KubeTarget, request_timeout: float | None = None) -> tuple[Any, str]:
    """A ``KatibClient`` for ``target`` whose every request has a deadline, and the API server's URL."""
    from kubeflow.katib import KatibClient

    cfg = configuration(target)
    katib = KatibClient(client_configuration=cfg, namespace=target.namespace)
    bound_requests(katib.custom_api.api_client, request_timeout)  # custom_api and core_api share it
    return katib, str(cfg.host)
