"""Katib's metric-line parsing, done as Katib's collector sidecar does it (one half of
``experiments.collector``: lines -> observations; ``_metrics_summary`` does observations -> summary).

Sources (kubeflow/katib v0.19): pkg/metricscollector/v1beta1/file-metricscollector/file-metricscollector.go
(parsing), cmd/metricscollector/v1beta1/file-metricscollector/main.go (the live watcher used for early
stopping).

- TEXT: a line counts only if it contains a metric name. If its first space-separated token is an RFC 3339
  (nano) time, that is the timestamp, otherwise none (Katib's zero time). Every match of every
  metricsFormat regex whose group 1 (trimmed) is a metric name is recorded; group 2 (trimmed) is the value,
  kept as a string. The regexes are RE2, compiled by the spec's one function (``compile_metrics_format``).
- JSON: one JSON object per line; a metric is taken only when its value is a JSON string; the timestamp is
  the "timestamp" key, an RFC 3339 string or a number of Unix seconds.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from experiments.backends._protocol import Observation
from experiments.errors import KatibSuiteError
from experiments.spec._local_support import collector_problem
from experiments.spec._metrics_format import compile_metrics_format
from experiments.spec._model import DEFAULT_METRICS_FORMAT, MetricsCollector, Objective

# Go's time.Time{}: what Katib records for a metric line without a timestamp; sorts before every real time.
ZERO_TIME = datetime(1, 1, 1, tzinfo=timezone.utc)
TIMESTAMP_JSON_KEY = "timestamp"


class MetricsCollectionError(KatibSuiteError):
    """The trial's metrics output cannot be parsed the way Katib would (Katib's collector fails the trial)."""


def metric_names(objective: Objective) -> tuple[str, ...]:
    """Katib's collector metric list: the objective first (it decides "unavailable"), then the additional ones.
    The one definition: the runner, the trial and the store all use it."""
    return (objective.objective_metric_name, *objective.additional_metric_names)


# --------------------------------------------------------------------------------------------------------------
# Go semantics for the pieces Katib's collector leans on: RFC 3339 parsing, strconv.ParseFloat, FindAll.

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})\Z", re.ASCII
)


def parse_rfc3339(text: str) -> datetime | None:
    """Go's ``time.Parse(time.RFC3339Nano, text)``: strict (upper-case T/Z, two-digit fields), else None.

    Python keeps microseconds, so nanosecond digits beyond the sixth are dropped.
    """
    m = _RFC3339.match(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        if zone == "Z":
            tz = timezone.utc
        else:
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours >= 24 or minutes >= 60:
                return None
            sign = -1 if zone[0] == "-" else 1
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        micro = int((frac or "0")[:6].ljust(6, "0"))
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz
        )
    except ValueError:
        return None


def parse_float(text: str) -> float | None:
    """Go's ``strconv.ParseFloat(text, 64)`` with the error as None.

    Differences from Python's ``float`` that matter for metric values: no surrounding whitespace, no
    underscores, hex floats allowed, and an out-of-range literal ("1e400") is an error, not infinity.
    """
    if not text or not text.isascii() or text != text.strip() or "_" in text:
        return None
    try:
        value = float(text)
    except ValueError:
        if "0x" not in text.lower():
            return None
        try:
            value = float.fromhex(text)
        except (ValueError, OverflowError):
            return None
    if math.isinf(value) and "inf" not in text.lower():
        return None
    return value


def _find_all(regex: Any, text: str) -> Iterator[Any]:
    """Go's ``FindAllStringSubmatch(text, -1)``: like finditer, but an empty match abutting the previous match
    is skipped (Python keeps it)."""
    prev_end = -1
    for m in regex.finditer(text):
        if m.start() == m.end() == prev_end:
            continue
        prev_end = m.end()
        yield m


# --------------------------------------------------------------------------------------------------------------
# Parsing.


def _text_line(line: str, names: Sequence[str], regexes: Sequence[Any]) -> list[Observation]:
    if not any(name in line for name in names):
        return []
    head, sep, _ = line.partition(" ")
    timestamp = parse_rfc3339(head) if sep else None
    found: list[Observation] = []
    for regex in regexes:
        if regex.groups < 2:  # Go: len(submatches) < 3 -> skipped
            continue
        for m in _find_all(regex, line):
            name = (m.group(1) or "").strip()
            if name in names:
                found.append(Observation(name=name, value=(m.group(2) or "").strip(), timestamp=timestamp))
    return found


def _compile_all(regexes: Sequence[str]) -> list[Any]:
    return [compile_metrics_format(r) for r in (regexes or (DEFAULT_METRICS_FORMAT,))]


def parse_text(
    lines: Iterable[str], metric_names: Sequence[str], regexes: Sequence[str] = (DEFAULT_METRICS_FORMAT,)
) -> list[Observation]:
    """Katib's ``parseLogsInTextFormat``: every (name, value) a metricsFormat regex finds on a metric line."""
    compiled = _compile_all(regexes)
    names = tuple(metric_names)
    found: list[Observation] = []
    for line in lines:
        found.extend(_text_line(line.rstrip("\n"), names, compiled))
    return found


def _json_timestamp(value: object) -> datetime | None:
    if isinstance(value, str):
        return parse_rfc3339(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # Katib splits the float's decimal text and reads the fraction digits as nanoseconds (1.5 -> 1 s + 5 ns);
        # we take the number as the seconds it says, which agrees with Katib on whole seconds.
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _json_line(line: str, names: Sequence[str], lineno: int | None = None) -> list[Observation]:
    if not line:
        return []
    try:
        obj = json.loads(line, parse_constant=_reject_constant)
    except ValueError as exc:
        where = f"line {lineno}" if lineno else "a line"
        raise MetricsCollectionError(
            f"metrics file {where} is not JSON ({exc}): {line[:80]!r}; the File collector with format JSON needs "
            'one JSON object per line, e.g. {"eval_accuracy": "0.71", "timestamp": 1700000000.0}.'
        ) from None
    if obj is None:  # Go unmarshals null into a nil map without error
        return []
    if not isinstance(obj, dict):
        raise MetricsCollectionError(
            f"metrics file line {lineno or '?'} is a JSON {type(obj).__name__}, not an object: {line[:80]!r}; "
            "write one JSON object per line."
        )
    timestamp = _json_timestamp(obj[TIMESTAMP_JSON_KEY]) if TIMESTAMP_JSON_KEY in obj else None
    return [
        Observation(name=name, value=obj[name], timestamp=timestamp)
        for name in names
        if isinstance(obj.get(name), str)
    ]


def parse_json(lines: Iterable[str], metric_names: Sequence[str]) -> list[Observation]:
    """Katib's ``parseLogsInJsonFormat``: string-valued metrics of one JSON object per line."""
    names = tuple(metric_names)
    found: list[Observation] = []
    for lineno, line in enumerate(lines, start=1):
        found.extend(_json_line(line.rstrip("\n"), names, lineno))
    return found


def _file_format(spec: MetricsCollector) -> str:
    problem = collector_problem(spec.kind)  # the spec's rule; validate reports it for the local backend
    if problem is not None:
        raise KatibSuiteError(f"metricsCollectorSpec.collector.kind {spec.kind!r}: {problem.message}")
    kind = spec.kind
    # StdOut is a TEXT file on the cluster (the wrapped command tees into /var/log/katib/metrics.log).
    fmt = "TEXT" if kind == "StdOut" else (spec.file_format or "TEXT")
    if fmt not in ("TEXT", "JSON"):
        raise KatibSuiteError(
            f"metricsCollectorSpec source.fileSystemPath.format must be one of ['JSON', 'TEXT']; got: {fmt}"
        )
    return fmt


class LineCollector:
    """Incremental collector over a growing log: ``feed`` one line, get the observations it carries.

    TEXT (StdOut, File/TEXT) or JSON (File/JSON) per the spec, exactly as :func:`parse_text` / :func:`parse_json`.
    A JSON line that is not an object raises :class:`MetricsCollectionError` (Katib's collector fails the trial).
    """

    def __init__(self, spec: MetricsCollector, metric_names: Sequence[str]) -> None:
        self.spec = spec
        self.metric_names = tuple(metric_names)
        self.format = _file_format(spec)
        self._regexes = _compile_all(spec.regexes) if self.format == "TEXT" else []
        self._lineno = 0

    def feed(self, line: str) -> list[Observation]:
        self._lineno += 1
        line = line.rstrip("\n")
        if self.format == "JSON":
            return _json_line(line, self.metric_names, self._lineno)
        return _text_line(line, self.metric_names, self._regexes)


def collect_file(spec: MetricsCollector, metric_names: Sequence[str], path: Path) -> list[Observation]:
    """Katib's ``CollectObservationLog`` over a whole file (the raw observations; see :func:`observation_log`)."""
    collector = LineCollector(spec, metric_names)
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    found: list[Observation] = []
    for line in text.split("\n"):  # Go's strings.Split: a "\r" stays on its line, as on the cluster
        found.extend(collector.feed(line))
    return found
