"""The Katib trial program: distributed RoBERTa fine-tuning (``python -m trainer.train`` / ``torchrun``).

Public names are imported lazily so ``import trainer`` stays light (the experiment validator reads
``METRIC_NAMES``; promote-best reads ``read_trial_json`` and the S3 helpers in ``trainer.s3``).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "main": "trainer.train",
    "METRIC_NAMES": "trainer.reporting",
    "format_metric_line": "trainer.reporting",
    "read_trial_json": "trainer.checkpoint",
    "TOPICS": "trainer.labels",
    "ID2LABEL": "trainer.labels",
    "LABEL2ID": "trainer.labels",
    "TrainerInputError": "trainer.errors",
    "S3Error": "trainer.s3",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'trainer' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
