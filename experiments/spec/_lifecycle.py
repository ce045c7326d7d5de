"""Katib's resume rules and a trial's output location, as pure functions of the spec.

Both backends use them: the local one before it restarts its runner, the cluster one before it patches the
Experiment (``KatibClient.edit_experiment_budget``). Sources (kubeflow/katib v0.19):
pkg/webhook/v1beta1/experiment/validator/validator.go (an update may change only parallelTrialCount,
maxTrialCount and maxFailedTrialCount; a finished experiment restarts only if it ended
ExperimentMaxTrialsReached and its resumePolicy is not Never) and the experiment controller (a restarted
experiment runs until its new maxTrialCount, so that count must grow).

    updated = resume_experiment(exp, finished=True, reason="ExperimentMaxTrialsReached", max_trial_count=12)
    trial_output_location(exp, {"lr": "2e-5", "batch_size": "32"}, "quickstart-abcdefgh")  # "s3://b/..."
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from experiments.errors import UsageError
from experiments.spec._errors import SpecError
from experiments.spec._model import Experiment

# Katib's experiment reason for "every trial of the budget ran" (experiment_types.go).
MAX_TRIALS_REACHED = "ExperimentMaxTrialsReached"
# The fields a resume (a Katib Experiment update) may change, as the Experiment's attribute names.
RESUMABLE_FIELDS = ("max_trial_count", "parallel_trial_count", "max_failed_trial_count")
_COUNT_PATHS = ("spec.maxTrialCount", "spec.parallelTrialCount", "spec.maxFailedTrialCount")


class ResumeRefusedError(SpecError):
    """Katib would not restart this experiment; the message says what would make it restartable."""


def resume_experiment(
    exp: Experiment,
    *,
    finished: bool,
    reason: str = "",
    interrupted: bool = False,
    max_trial_count: int | None = None,
    parallel_trial_count: int | None = None,
    max_failed_trial_count: int | None = None,
) -> Experiment:
    """The experiment with its new budget, or why Katib refuses the resume.

    ``finished``: it ended Succeeded or Failed; ``reason`` is its reason then. ``interrupted``: it stopped
    without ending (the local runner was killed; on a cluster Katib's controller would still be running it),
    which resumes as it is, with any new counts. Raises :class:`ResumeRefusedError` (Katib's rules) or
    :class:`UsageError` (a count that would make the spec invalid)."""
    name = exp.name
    if finished and not interrupted:
        if reason != MAX_TRIALS_REACHED:
            raise ResumeRefusedError(
                f"experiment {name!r} ended ({reason or 'no reason'}); Katib resumes only an experiment that "
                "reached maxTrialCount. Submit a new experiment (--name) to search again."
            )
        if (exp.resume_policy or "Never") == "Never":
            raise ResumeRefusedError(
                f"experiment {name!r} ended ({reason}) and its resumePolicy is Never; set "
                "spec.resumePolicy: LongRunning to allow resuming, or submit it again under a new --name."
            )
        if max_trial_count is None or max_trial_count <= (exp.max_trial_count or 0):
            raise UsageError(
                f"experiment {name!r} already ran maxTrialCount={exp.max_trial_count} trials; "
                f"pass a larger count, e.g. --max-trials {(exp.max_trial_count or 0) + 4}."
            )
    changes = {
        "max_trial_count": max_trial_count,
        "parallel_trial_count": parallel_trial_count,
        "max_failed_trial_count": max_failed_trial_count,
    }
    for field, value in changes.items():
        if value is not None and value < 1:
            raise UsageError(f"{field} must be a positive integer; got: {value}")
    updated = dataclasses.replace(exp, **{k: v for k, v in changes.items() if v is not None})
    from experiments.spec._validate import validate_experiment

    # The counts' own rules (validator.go), the same ones validate applies to a new experiment.
    problems = [p for p in validate_experiment(updated, backend=None) if p.path in _COUNT_PATHS]
    if problems:
        raise UsageError(
            "the new budget is not valid: "
            + "; ".join(str(p) for p in problems)
            + ". Lower it or raise --max-trials."
        )
    return updated


def output_dir_from_argv(argv: Sequence[str]) -> str | None:
    """The trainer's ``--output_dir`` in a trial's command line (``--output_dir=X`` or ``--output_dir X``)."""
    for i, arg in enumerate(argv):
        if arg.startswith("--output_dir="):
            return arg.split("=", 1)[1]
        if arg == "--output_dir" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def trial_output_location(
    exp: Experiment, assignments: Mapping[str, str], trial_name: str, namespace: str = "default"
) -> str | None:
    """Where a trial's checkpoint goes: the ``--output_dir`` of its primary container as Katib renders it
    (a local path or an s3:// URI; None when the trial command names none). Katib never stores checkpoints:
    the trial writes them, so the location is a function of the spec, the assignments and the trial name."""
    from experiments.spec._render import primary_container, render_trial

    rendered = render_trial(exp, assignments, trial_name, namespace)
    container = primary_container(rendered, exp)
    argv = [str(a) for a in (container.get("command") or [])] + [str(a) for a in container.get("args") or []]
    return output_dir_from_argv(argv)


__all__ = [
    "MAX_TRIALS_REACHED",
    "RESUMABLE_FIELDS",
    "ResumeRefusedError",
    "output_dir_from_argv",
    "resume_experiment",
    "trial_output_location",
]
