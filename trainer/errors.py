"""Errors the trainer reports as one line on stderr (no traceback), then exits non-zero."""

from __future__ import annotations


class TrainerError(Exception):
    """A problem the trainer reports as one line and an exit code; its own base, so the trial image
    (which carries trainer/ alone) needs nothing from experiments/."""

    exit_code = 1


class TrainerInputError(TrainerError):
    """Bad flags, data, model or storage location; the message names the problem and the fix."""

    exit_code = 2


class PeerRankFailed(TrainerError):
    """Another rank failed first and already reported why; this rank exits quietly."""
