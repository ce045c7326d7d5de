"""Katib's resume rules and a trial's output location: pure functions of the spec, shared by both backends."""

from __future__ import annotations

import dataclasses

import pytest

from experiments.errors import UsageError
from experiments.spec import load_experiment
from experiments.spec._lifecycle import (
    MAX_TRIALS_REACHED,
    ResumeRefusedError,
    output_dir_from_argv,
    resume_experiment,
    trial_output_location,
)
from tests.experiments.spec.conftest import QUICKSTART, REPO

EXP = dataclasses.replace(load_experiment(QUICKSTART), resume_policy="LongRunning")


def test_a_finished_long_running_experiment_resumes_with_a_larger_budget():
    updated = resume_experiment(EXP, finished=True, reason=MAX_TRIALS_REACHED, max_trial_count=8)
    assert updated.max_trial_count == 8
    assert dataclasses.replace(updated, max_trial_count=EXP.max_trial_count) == EXP  # nothing else changed


@pytest.mark.parametrize(
    ("exp", "kwargs", "error", "fragment"),
    [
        (
            EXP,
            {"reason": "ExperimentGoalReached", "max_trial_count": 8},
            ResumeRefusedError,
            "reached maxTrialCount",
        ),
        (
            EXP,
            {"reason": "ExperimentFailed", "max_trial_count": 8},
            ResumeRefusedError,
            "reached maxTrialCount",
        ),
        (
            dataclasses.replace(EXP, resume_policy="Never"),
            {"reason": MAX_TRIALS_REACHED, "max_trial_count": 8},
            ResumeRefusedError,
            "resumePolicy is Never",
        ),
        (EXP, {"reason": MAX_TRIALS_REACHED}, UsageError, "--max-trials 9"),
        (EXP, {"reason": MAX_TRIALS_REACHED, "max_trial_count": 5}, UsageError, "pass a larger count"),
        (
            EXP,
            {"reason": MAX_TRIALS_REACHED, "max_trial_count": 8, "parallel_trial_count": 9},
            UsageError,
            "spec.parallelTrialCount = 9: must be <= spec.maxTrialCount (8)",
        ),
        (
            EXP,
            {"reason": MAX_TRIALS_REACHED, "max_trial_count": 8, "max_failed_trial_count": 0},
            UsageError,
            "positive",
        ),
    ],
)
def test_katib_refuses_these_resumes(exp, kwargs, error, fragment):
    with pytest.raises(error) as info:
        resume_experiment(exp, finished=True, **kwargs)
    assert fragment in str(info.value)


def test_an_interrupted_or_unfinished_experiment_resumes_as_it_is():
    never = dataclasses.replace(EXP, resume_policy="Never")
    assert resume_experiment(never, finished=False) == never
    assert resume_experiment(never, finished=True, reason="ExperimentKilled", interrupted=True) == never
    assert resume_experiment(never, finished=False, parallel_trial_count=2).parallel_trial_count == 2


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["torchrun", "-m", "trainer.train", "--output_dir=s3://b/x"], "s3://b/x"),
        (["python", "--output_dir", "runs/t"], "runs/t"),
        (["python", "--output_dir"], None),
        (["python", "--lr=1"], None),
    ],
)
def test_output_dir_from_argv(argv, expected):
    assert output_dir_from_argv(argv) == expected


def test_trial_output_location_is_the_rendered_primary_containers_output_dir():
    assignments = {"lr": "2e-5", "batch_size": "32"}
    assert (
        trial_output_location(EXP, assignments, "quickstart-abcdefgh")
        == "runs/quickstart/quickstart-abcdefgh"
    )
    cluster = load_experiment(REPO / "experiments" / "roberta-large-yahoo.yaml", backend="cluster")
    location = trial_output_location(cluster, assignments, "roberta-large-yahoo-abcdefgh")
    assert (
        location is not None
        and location.startswith("s3://")
        and location.endswith("/roberta-large-yahoo-abcdefgh")
    )
