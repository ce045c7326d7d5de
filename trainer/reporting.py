"""Katib metric lines (DESIGN contract 3).

Global rank 0 prints ONE line per evaluation that Katib's default metricsFormat regex parses, prefixed
by an RFC 3339 timestamp (medianstop orders observations by it):

    2026-01-01T10:00:00Z epoch=1.0 step=120 eval_loss=0.91 eval_accuracy=0.71 eval_f1=0.70

This module imports nothing heavy: the Experiment validator reads ``METRIC_NAMES`` from it.
"""

from __future__ import annotations

# Every name the trainer can print on a metric line; an Experiment's objective and additional
# metrics must be among these when its trial runs ``trainer.train``.
METRIC_NAMES = ("epoch", "step", "train_loss", "eval_loss", "eval_accuracy", "eval_f1")
