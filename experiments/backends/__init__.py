"""Backends behind one protocol: ``local`` (Optuna + torchrun on this machine) and ``cluster`` (Katib)."""

from __future__ import annotations

import importlib
from typing import Any

from experiments.backends._protocol import Backend
from experiments.errors import UsageError

# name -> "module:Class"; imported only when chosen so the CLI starts fast.
BACKENDS = {
    "local": "experiments.backends.local:LocalBackend",
    "cluster": "experiments.backends.cluster:ClusterBackend",
}


def get_backend(name: str = "local", **options: Any) -> Backend:
    target = BACKENDS.get(name)
    if target is None:
        raise UsageError(f"--backend must be one of {sorted(BACKENDS)}; got: {name}")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(**options)
