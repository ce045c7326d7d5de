"""End to end: the quickstart Experiment through the Python API, each trial a real 2-process torchrun job."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

import experiments
from experiments.backends._protocol import EXPERIMENT_SUCCEEDED, REASON_MAX_TRIALS_REACHED, TRIAL_SUCCEEDED
from tests.experiments.backends._local_helpers import REPO_ROOT


@pytest.mark.slow
def test_quickstart_runs_two_distributed_trials_of_the_real_trainer(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.delenv("KATIB_STORAGE", raising=False)
    exp = experiments.load_experiment(REPO_ROOT / "experiments" / "quickstart.yaml")
    # Two trials, one at a time, no early stopping: the point is the real trainer under the local backend.
    exp = dataclasses.replace(
        exp, name="e2e", max_trial_count=2, max_failed_trial_count=1, early_stopping=None
    )

    handle = experiments.submit(exp, workdir=tmp_path)
    status = handle.wait()

    assert (status.condition, status.reason) == (EXPERIMENT_SUCCEEDED, REASON_MAX_TRIALS_REACHED), (
        status.message
    )
    assert [t.condition for t in status.trials] == [TRIAL_SUCCEEDED, TRIAL_SUCCEEDED], [
        t.message for t in status.trials
    ]
    for trial in status.trials:
        accuracy = trial.metric("eval_accuracy")
        assert accuracy is not None and 0.0 <= float(accuracy.max) <= 1.0
        assert len([o for o in trial.observations if o.name == "eval_accuracy"]) >= 1
        # The rendered --output_dir, relative to the working directory, got the checkpoint and trial.json.
        assert trial.output_dir == f"runs/quickstart/{trial.name}"
        summary = json.loads((tmp_path / trial.output_dir / "trial.json").read_text())
        assert summary["trial_name"] == trial.name and summary["world_size"] == 2
    best = experiments.get_experiment("e2e", workdir=tmp_path).optimal_trial()
    assert best is not None and best.name in {t.name for t in status.trials}
