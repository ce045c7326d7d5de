"""Errors of the local predictor and its client: one paragraph (the problem, then the fix); never a traceback."""

from __future__ import annotations

from experiments.errors import KatibSuiteError


class PredictorError(KatibSuiteError):
    """The predictor cannot start: a bad flag, a model folder it cannot fetch or load."""

    exit_code = 1


class PredictionError(KatibSuiteError):
    """The endpoint is unreachable or refused the request; the message says what to change."""

    exit_code = 1

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status
