"""How a trial ended, decided once for the runner that watched it and for reconcile that finds it ended.

Katib's rules: a replica that exits non-zero fails the job (and the trial, with the job's message); a job
whose primary exits 0 succeeds, and the trial is Succeeded when the collector found the objective, else
MetricsUnavailable; a job past ``activeDeadlineSeconds`` fails with the Training Operator's reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from experiments.backends._protocol import (
    TRIAL_FAILED,
    TRIAL_METRICS_UNAVAILABLE,
    TRIAL_SUCCEEDED,
    Observation,
)
from experiments.backends.local._trial import failure_cause, tail_lines
from experiments.spec import Experiment

# The reason a Job / PyTorchJob past its activeDeadlineSeconds fails with (batch/v1 Job and the
# Training Operator's run policy both call it DeadlineExceeded).
REASON_DEADLINE_EXCEEDED = "DeadlineExceeded"
TAIL_LINES = 10


@dataclass(frozen=True)
class Outcome:
    condition: str
    reason: str
    message: str
    observations: tuple[Observation, ...]


def failure_message(primary: str, failed: Mapping[str, int], log_path) -> str:
    """Katib's trial message for a failed job: the first line names the replica and why it failed.

    When one replica fails its peers usually die of a broken connection; the replica whose log names
    a cause (primary first) is the one to report. Without a cause, the failing replica's last log line
    (e.g. the shell's "command not found"), then its last lines.
    """
    order = sorted(failed, key=lambda replica: replica != primary)
    for replica in order:
        cause = failure_cause(log_path(replica))
        if cause:
            return f"replica {replica} exited with code {failed[replica]}: {cause}" + _tail(log_path(replica))
    for replica in order:
        tail = tail_lines(log_path(replica), TAIL_LINES)
        if tail.strip():
            last = [line for line in tail.splitlines() if line.strip()][-1].strip()
            return f"replica {replica} exited with code {failed[replica]}: {last}" + _tail(log_path(replica))
    replica = order[0]
    return (
        f"replica {replica} exited with code {failed[replica]} and printed nothing "
        f"(its log {log_path(replica)} is empty)"
    )


def _tail(path: Path) -> str:
    tail = tail_lines(path, TAIL_LINES)
    return f"\nlast lines of its log:\n{tail}" if tail.strip() else ""


def succeeded_or_unavailable(
    experiment: Experiment, names: Sequence[str], observations: Sequence[Observation]
) -> Outcome:
    """The job succeeded: Succeeded with the objective observed, else MetricsUnavailable as Katib records it."""
    from experiments.collector import observation_log

    objective = experiment.objective.objective_metric_name
    if any(o.name == objective for o in observations):
        return Outcome(TRIAL_SUCCEEDED, "TrialSucceeded", "Trial has succeeded", tuple(observations))
    # Katib's collector then stores one "unavailable" objective entry instead of the log, so the
    # additional metrics the trial did print read "unavailable" too (newObservationLog).
    return Outcome(
        TRIAL_METRICS_UNAVAILABLE,
        "MetricsUnavailable",
        f"the trial exited 0 but reported no value of {objective!r} "
        f"(metrics collector: {experiment.metrics_collector.kind})",
        tuple(observation_log(list(observations), names)),
    )


def deadline_outcome(kind: str, trial: str, seconds: int, observations: Sequence[Observation]) -> Outcome:
    return Outcome(
        TRIAL_FAILED,
        REASON_DEADLINE_EXCEEDED,
        f"{kind} {trial} has failed because it was active longer than specified deadline "
        f"(runPolicy.activeDeadlineSeconds {seconds}); every replica was stopped",
        tuple(observations),
    )
