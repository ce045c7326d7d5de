"""Katib metric lines (DESIGN contract 3).

Global rank 0 prints ONE line per evaluation that Katib's default metricsFormat regex parses, prefixed
by an RFC 3339 timestamp (medianstop orders observations by it):

    2026-01-01T10:00:00Z epoch=1.0 step=120 eval_loss=0.91 eval_accuracy=0.71 eval_f1=0.70

This module imports nothing heavy: the Experiment validator reads ``METRIC_NAMES`` from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone

# Every name the trainer can print on a metric line; an Experiment's objective and additional
# metrics must be among these when its trial runs ``trainer.train``.
METRIC_NAMES = ("epoch", "step", "train_loss", "eval_loss", "eval_accuracy", "eval_f1")


# Katib's default metricsFormat, verbatim (pkg/metricscollector/v1beta1/common/const.go). Kept here so the
# formatter can be checked against it; the collector owns its own copy.
KATIB_DEFAULT_METRICS_FORMAT = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"


def _format_value(name: str, value: float) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"metric {name!r} must be a number; got: {value!r}")
    if not math.isfinite(value):
        # Printed as nan / inf / -inf: Katib's regex then captures an empty value, which its collector
        # records as unavailable, and the user reading the log sees what happened.
        return repr(float(value))
    if isinstance(value, int):
        return str(value)
    # repr() gives the shortest round-tripping form, e.g. 0.71, 1e-05, 120.0 — all parsed by the regex.
    return repr(float(value))


def format_metric_line(metrics: Mapping[str, float], when: datetime | None = None) -> str:
    """One Katib metric line: an RFC 3339 UTC timestamp, then ``name=value`` pairs in the given order.

    Every name must be in ``METRIC_NAMES`` (the Experiment validator relies on that list) and every value a
    number; a non-finite one is written ``nan`` / ``inf``, which Katib's regex reads as an empty value.
    """
    unknown = [name for name in metrics if name not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"metric names must be one of {list(METRIC_NAMES)}; got: {unknown}")
    when = when or datetime.now(timezone.utc)
    if when.tzinfo is None:
        raise ValueError("`when` must be timezone-aware so the timestamp is RFC 3339")
    stamp = when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    pairs = " ".join(f"{name}={_format_value(name, value)}" for name, value in metrics.items())
    return f"{stamp} {pairs}"
