"""Spec errors. The CLI prints ``str(error)``; every message names the field, the bad value and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from experiments.errors import KatibSuiteError, NotFoundError


class SpecError(KatibSuiteError):
    """Something is wrong with an Experiment or search-space file."""


class SpecFileError(SpecError):
    """The file cannot be read as YAML (or holds no mapping)."""


class SpecNotFoundError(SpecError, NotFoundError):
    """The Experiment or search-space file does not exist."""


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Problem:
    """One problem: where (Katib field path), what was there, and what to do about it."""

    path: str
    value: Any
    message: str

    def __str__(self) -> str:
        if self.value is None or self.value == "":
            return f"{self.path}: {self.message}"
        return f"{self.path} = {_short(self.value)}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        value = self.value
        if not isinstance(value, (str, int, float, bool, type(None), list, dict)):
            value = repr(value)
        return {"path": self.path, "value": value, "message": self.message}


class InvalidExperimentError(SpecError):
    """Every problem found in an Experiment, reported together."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = list(problems)
        n = len(self.problems)
        lines = [f"Experiment {source} is not valid, found {n} problem{'s' if n != 1 else ''}:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))
