"""katib-suite experiments: load, validate, render and run Katib Experiments.

Public names are re-exported here and imported lazily, so ``import experiments`` (and the CLI) stays fast.

    import experiments
    exp = experiments.load_experiment("experiments/quickstart.yaml", search_space="search_spaces/lr-batch.yaml")
    handle = experiments.submit(exp, backend="local")
    handle.wait(); print(handle.optimal_trial())
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Experiment": "experiments.spec",
    "load_experiment": "experiments.spec",
    "parse_experiment": "experiments.spec",
    "validate_experiment": "experiments.spec",
    "render_trial": "experiments.spec",
    "InvalidExperimentError": "experiments.spec",
    "submit": "experiments.api",
    "get_experiment": "experiments.api",
    "compare": "experiments.compare",
    "write_report": "experiments.compare",
    "KatibSuiteError": "experiments.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'experiments' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
