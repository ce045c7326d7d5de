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


class TrainingDiverged(TrainerError):
    """A loss or evaluation metric became NaN or infinite: the run cannot recover, so it ends Failed."""

    exit_code = 3

    def __init__(self, where: tuple[int, str, float], learning_rate: float) -> None:
        step, name, value = where
        super().__init__(
            f"training diverged: {name} is {value} at step {step} (learning rate {learning_rate:g}); "
            "lower --learning_rate (or its search-space max), or raise --warmup_ratio"
        )
