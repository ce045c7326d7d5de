"""Katib's per-metric summary of a trial's observations (one half of ``experiments.collector``).

Sources (kubeflow/katib v0.19): pkg/controller.v1beta1/trial/trial_controller_util.go (``getMetrics``:
min / max / latest) and the file collector's ``newObservationLog``. Which value of a trial counts for the
optimal trial is ``experiments.ranking`` (the one ranking).

A metric never reported reads "unavailable" (``UNAVAILABLE``), as in Katib's observation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from experiments._metrics_parse import ZERO_TIME, parse_float
from experiments.backends._protocol import MetricSummary, Observation
from experiments.ranking import UNAVAILABLE


def _time_key(obs: Observation) -> datetime:
    return obs.timestamp or ZERO_TIME


def observation_log(observations: Sequence[Observation], metric_names: Sequence[str]) -> list[Observation]:
    """Katib's ``newObservationLog``: with no value of the objective (``metric_names[0]``) the whole log is
    replaced by one "unavailable" objective entry (the trial then ends MetricsUnavailable)."""
    if any(o.name == metric_names[0] for o in observations):
        return list(observations)
    return [Observation(name=metric_names[0], value=UNAVAILABLE, timestamp=None)]


def summarize(observations: Sequence[Observation], metric_names: Sequence[str]) -> tuple[MetricSummary, ...]:
    """Katib's ``getMetrics``: per metric, min / max over the values that parse as floats (kept as the original
    strings), latest by timestamp (ties: the later line). A metric with no usable value reads "unavailable"."""
    summaries: list[MetricSummary] = []
    for name in metric_names:
        low = high = latest = UNAVAILABLE
        low_f = high_f = 0.0
        latest_at: datetime | None = None
        for obs in observations:
            if obs.name != name:
                continue
            value = parse_float(obs.value)
            if value is not None:
                if low == UNAVAILABLE:
                    low = high = obs.value
                    low_f = high_f = value
                elif value < low_f:
                    low, low_f = obs.value, value
                elif value > high_f:
                    high, high_f = obs.value, value
            at = _time_key(obs)
            if latest_at is None or not latest_at > at:
                latest_at, latest = at, obs.value
        summaries.append(MetricSummary(name=name, min=low, max=high, latest=latest))
    return tuple(summaries)
