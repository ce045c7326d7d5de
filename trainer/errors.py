"""Errors the trainer reports as one line on stderr (no traceback), then exits non-zero."""

from __future__ import annotations

from experiments.errors import KatibSuiteError


class TrainerInputError(KatibSuiteError):
    """Bad flags, data, model or storage location; the message names the problem and the fix."""

    exit_code = 2


class PeerRankFailed(KatibSuiteError):
    """Another rank failed first and already reported why; this rank exits quietly."""
