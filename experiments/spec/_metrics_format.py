"""metricsFormat regexes, compiled once for validation and collection with Go's RE2 semantics.

Katib's collector is Go (``regexp``, RE2 syntax), so a pattern is compiled by RE2 itself (the google-re2
bindings, ``import re2``) instead of being translated into Python's ``re``: what RE2 rejects (look-around,
back-references, atomic groups, ``(?#...)`` comments) fails here, in ``validate``, not after a trial has
started. RE2's ``\\w \\d \\s \\b`` are ASCII, as in Go. Go-RE2 and C++-RE2 differ where it matters in one
place: Go has no ``\\C`` (any byte), so it is rejected too. Both take ``(?P<name>...)`` and ``(?<name>...)``
(Go 1.22+), ``\\z``, ``\\Q...\\E``, POSIX classes, ``(?U)``.

    regex = compile_metrics_format(r"([\\w|-]+)\\s*=\\s*([+-]?\\d*(\\.\\d+)?([Ee][+-]?\\d+)?)")
    regex.search("loss=0.5").group(2)   # '0.5'
"""

from __future__ import annotations

import functools
from typing import Any

from experiments.errors import KatibSuiteError

# pkg/metricscollector/v1beta1/common/const.go, verbatim (also in _model.DEFAULT_METRICS_FORMAT).
_EXAMPLE = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"


class InvalidMetricsFormatError(KatibSuiteError):
    """A metricsFormat regex that Katib's Go collector could not use."""


def _options() -> Any:
    import re2

    options = re2.Options()
    options.log_errors = False  # RE2 would also print each syntax error to stderr
    return options


def _uses_any_byte(pattern: str) -> bool:
    i = 0
    while i < len(pattern) - 1:
        if pattern[i] == "\\":
            if pattern[i + 1] == "C":
                return True
            i += 2
            continue
        i += 1
    return False


@functools.lru_cache(maxsize=128)
def compile_metrics_format(pattern: str) -> Any:
    """The compiled RE2 regex (``re2._Regexp``: ``search``, ``finditer``, ``groups`` as in ``re``), or
    :class:`InvalidMetricsFormatError` naming the pattern, what RE2 says and the fix."""
    import re2

    if _uses_any_byte(pattern):
        raise InvalidMetricsFormatError(
            f"metricsFormat {pattern!r} uses \\C, which Go's regexp does not support; remove it"
        )
    try:
        return re2.compile(pattern, options=_options())
    except re2.error as error:
        reason = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
        raise InvalidMetricsFormatError(
            f"metricsFormat {pattern!r} is not a valid regular expression for Katib's Go collector (RE2: {reason}); "
            "rewrite it "
            f"without look-around or back-references, with two top-level groups, e.g. {_EXAMPLE}"
        ) from None


def top_level_groups(pattern: str) -> int:
    """Capturing groups at nesting depth 0 of an RE2-valid pattern; Katib reads group 1 as the metric name
    and group 2 as the value. A scan, not a parse: RE2 has already accepted the pattern, so only escapes,
    ``\\Q...\\E``, character classes and ``(?`` forms need recognising."""
    count = depth = 0
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if pattern.startswith("\\Q", i):
                end = pattern.find("\\E", i + 2)
                i = n if end < 0 else end + 2
                continue
            i += 2
            continue
        if c == "[":
            i = _class_end(pattern, i)
            continue
        if c == "(":
            capturing = not pattern.startswith("(?", i) or pattern.startswith(("(?P<", "(?<"), i)
            if depth == 0 and capturing:
                count += 1
            depth += 1
        elif c == ")":
            depth -= 1
        i += 1
    return count


def _class_end(pattern: str, start: int) -> int:
    """Index just past the character class opening at ``start`` (a leading ``]`` or ``^]`` is literal)."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            if end >= 0:
                i = end + 2
                continue
        if c == "]":
            return i + 1
        i += 1
    return i


def metrics_format_problem(pattern: str) -> str | None:
    """What is wrong with a metricsFormat for Katib (None: fine); the one rule validate reports."""
    try:
        compile_metrics_format(pattern)
    except InvalidMetricsFormatError as error:
        return str(error)
    groups = top_level_groups(pattern)
    if groups < 2:
        return f"needs two top-level groups (metric name, then value), found {groups}; e.g. {_EXAMPLE}"
    return None


__all__ = [
    "InvalidMetricsFormatError",
    "compile_metrics_format",
    "metrics_format_problem",
    "top_level_groups",
]
