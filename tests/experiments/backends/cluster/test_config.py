"""Which cluster and namespace, as kubectl picks them: --kubeconfig, else every file in $KUBECONFIG (merged),
else ~/.kube/config; --context or the current one; --namespace, else the context's, else default."""

from __future__ import annotations

import json

import pytest

from experiments.backends.cluster import KubeconfigError
from experiments.backends.cluster._config import configuration, resolve


def _config(path, context, namespace=None, current=True):
    ctx = {"cluster": context, "user": context, **({"namespace": namespace} if namespace else {})}
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", **({"current-context": context} if current else {}),
        "clusters": [{"name": context, "cluster": {"server": f"https://{context}.example:6443"}}],
        "users": [{"name": context, "user": {"token": "t"}}],
        "contexts": [{"name": context, "context": ctx}],
    }))  # fmt: skip
    return path


def test_kubeconfig_flag_then_its_context_namespace(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    path = _config(tmp_path / "a", "kind-a", "team-a")
    target = resolve(kubeconfig=str(path))
    assert (target.kubeconfig, target.context, target.namespace) == (str(path), "kind-a", "team-a")
    assert resolve(namespace="other", kubeconfig=str(path)).namespace == "other"


def test_several_files_in_kubeconfig_are_merged_as_kubectl_does(tmp_path, monkeypatch):
    a = _config(tmp_path / "a", "kind-a")
    b = _config(tmp_path / "b", "eks-b", "ml", current=False)
    monkeypatch.setenv("KUBECONFIG", f"{a}:{b}")
    assert resolve().context == "kind-a" and resolve().namespace == "default"
    target = resolve(context="eks-b")
    assert (target.context, target.namespace) == ("eks-b", "ml")
    assert configuration(target).host == "https://eks-b.example:6443"  # the credentials load from file b


def test_no_current_context_asks_for_one(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(_config(tmp_path / "a", "kind-a", current=False)))
    with pytest.raises(KubeconfigError, match="no current context; pass --context NAME"):
        resolve()


def test_a_broken_kubeconfig_is_named(tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    broken.write_text("clusters: [")
    monkeypatch.setenv("KUBECONFIG", str(broken))
    with pytest.raises(KubeconfigError, match=f"cannot read the kubeconfig {broken}"):
        resolve()
