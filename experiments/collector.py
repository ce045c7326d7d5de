"""Katib's metrics collection, done as Katib's collector sidecar and trial controller do it.

Sources (kubeflow/katib v0.19): pkg/metricscollector/v1beta1/file-metricscollector/file-metricscollector.go
(parsing), cmd/metricscollector/v1beta1/file-metricscollector/main.go (the live watcher used for early
stopping), pkg/controller.v1beta1/trial/trial_controller_util.go (``getMetrics``: min / max / latest) and
pkg/controller.v1beta1/experiment/util/status_util.go (``currentOptimalTrial`` and the goal).

- TEXT: a line counts only if it contains a metric name. If its first space-separated token is an RFC 3339
  (nano) time, that is the timestamp, otherwise none (Katib's zero time). Every match of every
  metricsFormat regex whose group 1 (trimmed) is a metric name is recorded; group 2 (trimmed) is the value,
  kept as a string.
- JSON: one JSON object per line; a metric is taken only when its value is a JSON string; the timestamp is
  the "timestamp" key, an RFC 3339 string or a number of Unix seconds.
- A metric never reported reads "unavailable" (``UNAVAILABLE``), as in Katib's observation.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from experiments.backends._protocol import (
    MetricSummary,
    Observation,
)
from experiments.errors import KatibSuiteError

# The ranking lives in experiments.ranking (one definition); re-exported for the collector's callers.
from experiments.ranking import UNAVAILABLE, goal_reached, objective_value, optimal_trial
from experiments.spec._model import DEFAULT_METRICS_FORMAT, MetricsCollector, Objective

__all__ = [
    "DEFAULT_METRICS_FORMAT",
    "UNAVAILABLE",
    "ZERO_TIME",
    "InvalidMetricsFormatError",
    "LineCollector",
    "MetricsCollectionError",
    "collect_file",
    "compile_go_regex",
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

# Go's time.Time{}: what Katib records for a metric line without a timestamp; sorts before every real time.
ZERO_TIME = datetime(1, 1, 1, tzinfo=timezone.utc)
TIMESTAMP_JSON_KEY = "timestamp"
# Katib's collector kinds that read the trial's own output; the others need a cluster component.
LOCAL_COLLECTOR_KINDS = ("StdOut", "File")


class MetricsCollectionError(KatibSuiteError):
    """The trial's metrics output cannot be parsed the way Katib would (Katib's collector fails the trial)."""


class InvalidMetricsFormatError(KatibSuiteError):
    """A metricsFormat regex that Katib's Go collector could not use."""


def metric_names(objective: Objective) -> tuple[str, ...]:
    """Katib's collector metric list: the objective first (it decides "unavailable"), then the additional ones."""
    return (objective.objective_metric_name, *objective.additional_metric_names)


# --------------------------------------------------------------------------------------------------------------
# Go semantics for the pieces Katib's collector leans on: RFC 3339 parsing, strconv.ParseFloat, RE2 regexes.

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


def _time_key(obs: Observation) -> datetime:
    return obs.timestamp or ZERO_TIME


_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_POSIX_RE = re.compile(r"\[:(\^?)([a-z]+):\]")


def _unsupported(pattern: str, what: str) -> InvalidMetricsFormatError:
    return InvalidMetricsFormatError(
        f"metricsCollectorSpec metricsFormat {pattern!r} uses {what}, which Katib's Go regexp (RE2) does not "
        f"support; rewrite it without it (the default is {DEFAULT_METRICS_FORMAT})."
    )


def _translate_go_regex(pattern: str) -> str:
    """Rewrite a Go RE2 pattern into the Python ``re`` pattern that matches the same strings.

    Go spellings Python lacks are rewritten: ``(?<name>`` -> ``(?P<name>``, ``\\z`` -> ``\\Z``,
    ``\\Q...\\E`` -> an escaped literal, POSIX classes ``[[:alpha:]]`` -> ASCII ranges. What RE2 rejects
    (look-around, back-references, atomic groups, the ungreedy flag) fails Katib's collector on the cluster,
    so it is rejected here too instead of working only locally.
    """
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                out.append(re.escape(pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]))
                i = n if end < 0 else end + 2
                continue
            if nxt in "123456789" and not in_class:
                raise _unsupported(pattern, f"a back-reference (\\{nxt})")
            out.append("\\Z" if nxt == "z" and not in_class else c + nxt)
            i += 2
            continue
        if in_class:
            if c == "[":
                m = _POSIX_RE.match(pattern, i)
                if m is None:
                    out.append("\\[")  # a bare [ in a class is a literal in Go; Python warns on it
                    i += 1
                    continue
                if m.group(1) or m.group(2) not in _POSIX_CLASSES:
                    raise _unsupported(pattern, f"the POSIX class {m.group(0)}")
                out.append(_POSIX_CLASSES[m.group(2)])
                i = m.end()
                continue
            in_class = c != "]"
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":  # a leading ] is a literal, not the end of the class
                out.append("\\]")
                i += 1
            continue
        if pattern.startswith("(?", i):
            rest = pattern[i + 2 :]
            if rest.startswith(("=", "!", "<=", "<!")):
                raise _unsupported(pattern, "a look-around assertion")
            if rest.startswith(">"):
                raise _unsupported(pattern, "an atomic group")
            if rest.startswith("<"):
                out.append("(?P<")
                i += 3
                continue
            if "U" in re.match(r"[A-Za-z-]*", rest).group(0):  # type: ignore[union-attr]
                raise _unsupported(pattern, "the ungreedy flag (?U)")
        out.append(c)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=64)
def compile_go_regex(pattern: str) -> re.Pattern[str]:
    """Compile a metricsFormat regex so Python reads it as Go does (``\\w \\d \\s \\b`` are ASCII in RE2)."""
    try:
        return re.compile(_translate_go_regex(pattern), re.ASCII)
    except re.error as exc:
        raise InvalidMetricsFormatError(
            f"metricsCollectorSpec metricsFormat {pattern!r} is not a valid regular expression ({exc}); "
            "fix it so it has two top-level groups: (metric name) and (value)."
        ) from None


def _find_all(regex: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
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


def _text_line(line: str, names: Sequence[str], regexes: Sequence[re.Pattern[str]]) -> list[Observation]:
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


def _compile_all(regexes: Sequence[str]) -> list[re.Pattern[str]]:
    return [compile_go_regex(r) for r in (regexes or (DEFAULT_METRICS_FORMAT,))]


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
    kind = spec.kind
    if kind not in LOCAL_COLLECTOR_KINDS:
        raise KatibSuiteError(
            f"metricsCollectorSpec collector kind must be one of {list(LOCAL_COLLECTOR_KINDS)} on the local "
            f"backend; got: {kind}. Print metrics to stdout (StdOut) or a file (File), or use --backend cluster."
        )
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


def observation_log(observations: Sequence[Observation], metric_names: Sequence[str]) -> list[Observation]:
    """Katib's ``newObservationLog``: with no value of the objective (``metric_names[0]``) the whole log is
    replaced by one "unavailable" objective entry (the trial then ends MetricsUnavailable)."""
    if any(o.name == metric_names[0] for o in observations):
        return list(observations)
    return [Observation(name=metric_names[0], value=UNAVAILABLE, timestamp=None)]


# --------------------------------------------------------------------------------------------------------------
# Summaries, objective values, the optimal trial.


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
