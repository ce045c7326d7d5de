"""The local backend in a scratch directory, shared by the local-backend tests (cluster/ has its own)."""

from __future__ import annotations

import pytest

from experiments.backends.local import LocalBackend


@pytest.fixture
def backend(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("KATIB_STORAGE", raising=False)
    return LocalBackend(workdir=tmp_path)
