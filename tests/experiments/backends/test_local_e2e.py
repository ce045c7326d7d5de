"""End to end: the quickstart Experiment through the Python API, each trial a real 2-process torchrun job."""

from __future__ import annotations

import copy
import dataclasses
import json
import os

import psutil
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
        # Both processes of every trial were forked from the runner's warm trainer, now stopped.
        assert summary["timings"]["warm_start"] is True
    assert not [
        p for p in psutil.Process().children(recursive=True) if "trainer.warm" in " ".join(p.cmdline())
    ]
    best = experiments.get_experiment("e2e", workdir=tmp_path).optimal_trial()
    assert best is not None and best.name in {t.name for t in status.trials}


def _minimal(exp, name: str):
    """The quickstart with one-step trials: what start-up costs, not what training does."""
    spec = copy.deepcopy(dict(exp.trial_template.trial_spec))
    for replica in spec["spec"]["pytorchReplicaSpecs"].values():
        container = replica["template"]["spec"]["containers"][0]
        container["command"] = [*container["command"], "--max_steps=1", "--max_eval_samples=32"]
    template = dataclasses.replace(exp.trial_template, trial_spec=spec)
    return dataclasses.replace(
        exp,
        name=name,
        max_trial_count=1,
        max_failed_trial_count=1,
        early_stopping=None,
        trial_template=template,
    )


@pytest.mark.slow
@pytest.mark.parametrize("warm_start", ["1", "0"])
def test_katib_warm_start_turns_the_warm_trainer_on_and_off(tmp_path, monkeypatch, warm_start):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.delenv("KATIB_STORAGE", raising=False)
    monkeypatch.setenv("KATIB_WARM_START", warm_start)
    exp = _minimal(experiments.load_experiment(REPO_ROOT / "experiments" / "quickstart.yaml"), "minimal")

    status = experiments.submit(exp, workdir=tmp_path).wait()

    assert [t.condition for t in status.trials] == [TRIAL_SUCCEEDED], [t.message for t in status.trials]
    trial = status.trials[0]
    summary = json.loads((tmp_path / trial.output_dir / "trial.json").read_text())
    assert summary["timings"]["warm_start"] is (warm_start == "1")
    assert (tmp_path / ".katib" / "minimal" / "warm-trainer.log").exists() is (warm_start == "1")
