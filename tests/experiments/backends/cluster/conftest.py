"""Fixtures for the cluster backend: the stand-in API server with the platform installed, a kubeconfig for
it, and the CLI run in-process (exit code, stdout, stderr)."""

from __future__ import annotations

import pytest

from tests.experiments.backends.cluster.katib_world import NS, install_platform
from tests.k8s_standin import k8s_standin, kubeconfig  # noqa: F401  (fixtures)


@pytest.fixture
def platform(k8s_standin, kubeconfig, monkeypatch):  # noqa: F811
    """The stand-in as infra/install.sh leaves a cluster; $KUBECONFIG points at it."""
    install_platform(k8s_standin)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KATIB_DB_MANAGER_ADDRESS", raising=False)
    return k8s_standin


@pytest.fixture
def backend(platform):
    from experiments.backends.cluster import ClusterBackend

    return ClusterBackend(namespace=NS, poll_interval=0.01)


@pytest.fixture
def katib(capsys, monkeypatch, tmp_path):
    """``katib(*argv)`` -> (exit code, stdout, stderr), run in-process in a scratch directory."""
    from experiments.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["experiment", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run
