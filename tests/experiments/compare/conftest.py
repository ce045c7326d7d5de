"""Experiments made by the local backend, running the stand-in trial, shared by the compare tests.

``cmp-a`` (maximize accuracy, medianstop, one process per trial) ends with every kind of trial Katib
knows: Succeeded, EarlyStopped at step 2, MetricsUnavailable, Failed; then it is resumed for one more
(best) trial. ``cmp-b`` runs three two-process trials whose accuracy is a function of lr and batch_size.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest

from experiments.backends.local import LocalBackend
from experiments.spec import EarlyStopping, FeasibleSpace, Parameter, Setting, TrialParameter
from tests.experiments.backends._local_helpers import make_experiment

PLAN_A = ";".join(
    [
        "0.5,0.6,0.7",
        "0.8,0.85,0.9",
        "0.1,0.1,0.1,0.1,0.1,0.1|sleep=0.4",  # medianstop stops it at its 2nd report
        "-",  # exits 0 without a metric line: MetricsUnavailable
        "0.3|exit=1",  # one report, then the trainer fails
        "0.95,0.96,0.97",  # the trial resume runs: the best one
    ]
)


@dataclass(frozen=True)
class Runs:
    workdir: Path
    storage: str

    def backend(self) -> LocalBackend:
        return LocalBackend(storage=self.storage, workdir=self.workdir)


def experiment_b(tmp: Path):
    exp = make_experiment(
        "cmp-b",
        tmp,
        workers=1,
        max_trials=3,
        extra_args=("--score", "--epochs=3", "--units=${trialParameters.batchSize}"),
    )
    template = exp.trial_template
    return dataclasses.replace(
        exp,
        parameters=(*exp.parameters, Parameter("batch_size", "int", FeasibleSpace(min="1", max="4"))),
        trial_template=dataclasses.replace(
            template, trial_parameters=(*template.trial_parameters, TrialParameter("batchSize", "batch_size"))
        ),
    )


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> Runs:
    """Run both experiments once per session (about 10 s of stand-in trials) and keep their storage."""
    workdir = tmp_path_factory.mktemp("compare-runs")
    storage = f"sqlite:///{workdir / 'experiments.db'}"
    backend = LocalBackend(storage=storage, workdir=workdir)
    mp = pytest.MonkeyPatch()
    mp.setenv("OMP_NUM_THREADS", "1")
    try:
        exp_a = make_experiment(
            "cmp-a",
            workdir / "a",
            plan=PLAN_A,
            sleep=0.02,
            max_trials=5,
            workers=0,
            resume_policy="LongRunning",
            early_stopping=EarlyStopping(
                "medianstop", (Setting("min_trials_required", "2"), Setting("start_step", "2"))
            ),
        )
        backend.submit(exp_a).wait()
        backend.resume("cmp-a", max_trial_count=6).wait()
        backend.submit(experiment_b(workdir / "b")).wait()
    finally:
        mp.undo()
    return Runs(workdir, storage)
