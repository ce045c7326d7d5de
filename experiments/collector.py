"""Katib's metrics collection, done as Katib's collector sidecar and trial controller do it.

The public face of two halves split along their seam: metric-line parsing (``experiments._metrics_parse``:
TEXT / JSON lines -> observations, Go semantics for times, floats and RE2 regexes) and the per-metric summary
(``experiments._metrics_summary``: Katib's ``getMetrics`` and ``newObservationLog``). The objective value,
the optimal trial and the goal are the one ranking, ``experiments.ranking``, re-exported here for the
collector's callers. metricsFormat regexes are compiled by the spec's one function
(``experiments.spec.compile_metrics_format``), for validation and collection alike.
"""

from __future__ import annotations

from experiments._metrics_parse import (
    TIMESTAMP_JSON_KEY,
    ZERO_TIME,
    LineCollector,
    MetricsCollectionError,
    collect_file,
    metric_names,
    parse_float,
    parse_json,
    parse_rfc3339,
    parse_text,
)
from experiments._metrics_summary import observation_log, summarize
from experiments.ranking import UNAVAILABLE, goal_reached, objective_value, optimal_trial
from experiments.spec._local_support import LOCAL_COLLECTOR_KINDS
from experiments.spec._metrics_format import InvalidMetricsFormatError, compile_metrics_format
from experiments.spec._model import DEFAULT_METRICS_FORMAT

__all__ = [
    "DEFAULT_METRICS_FORMAT",
    "LOCAL_COLLECTOR_KINDS",
    "TIMESTAMP_JSON_KEY",
    "UNAVAILABLE",
    "ZERO_TIME",
    "InvalidMetricsFormatError",
    "LineCollector",
    "MetricsCollectionError",
    "collect_file",
    "compile_metrics_format",
    "goal_reached",
    "metric_names",
    "objective_value",
    "observation_log",
    "optimal_trial",
    "parse_float",
    "parse_json",
    "parse_rfc3339",
    "parse_text",
    "summarize",
]
