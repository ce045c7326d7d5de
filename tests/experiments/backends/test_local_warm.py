"""The local backend's warm trainer: which trials it serves, and what happens when it cannot start."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from experiments.backends.local import _warm
from experiments.backends.local._trial import ReplicaPlan, TrialPlan


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["torchrun", "-m", "trainer.train", "--lr=1"], True),
        (["torchrun", "--nproc_per_node=2", "-m", "trainer.train"], True),
        (["python", "-m", "trainer.train"], True),
        (["python", "-mtrainer.train"], True),
        (["python", "trainer/train.py"], False),  # a script, not the module the server preloads
        (["python", "-m", "trainer.trainx"], False),
        (["bash", "-c", "torchrun -m trainer.train"], False),  # a shell line: its processes are not ours
        (["python", "standin.py", "-m", "x"], False),
    ],
)
def test_runs_trainer(argv, expected) -> None:
    assert _warm.runs_trainer(argv) is expected


def plan(*argvs: list[str]) -> TrialPlan:
    replicas = tuple(
        ReplicaPlan(f"r-{i}", tuple(argv), {"RANK": str(i)}, primary=i == 0) for i, argv in enumerate(argvs)
    )
    return TrialPlan(replicas, metrics_path=Path("m.log"))


@pytest.fixture
def warm(tmp_path):
    trainer = _warm.WarmTrainer(tmp_path, tmp_path)
    yield trainer
    trainer.stop()  # a failing test must not leave a server behind


def test_a_trial_that_does_not_run_the_trainer_gets_no_warm_trainer(warm) -> None:
    standin = plan(["python", "standin.py"])
    assert warm.serve(standin, lambda: None) is standin
    assert warm.proc is None


def test_turned_off_by_katib_warm_start(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KATIB_WARM_START", "off")
    warm = _warm.WarmTrainer(tmp_path, tmp_path)  # read when the runner starts
    trainer = plan(["torchrun", "-m", "trainer.train"])
    assert warm.serve(trainer, lambda: None) is trainer and warm.proc is None


def test_a_warm_trainer_that_cannot_start_leaves_trials_cold_with_a_note(
    tmp_path, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(_warm, "SERVER_MODULE", "trainer.no_such_module")
    warm = _warm.WarmTrainer(tmp_path, tmp_path)
    trainer = plan(["torchrun", "-m", "trainer.train"], ["torchrun", "-m", "trainer.train"])
    with caplog.at_level(logging.WARNING, logger="experiments.backends.local"):
        assert warm.serve(trainer, lambda: None) is trainer
    assert warm.broken and warm.proc is None
    assert "the warm trainer exited 1" in caplog.text and "trials start cold" in caplog.text
    assert "No module named trainer.no_such_module" in (tmp_path / "warm-trainer.log").read_text()
    assert warm.serve(trainer, lambda: None) is trainer  # it is not tried again for every trial


def test_an_interrupt_while_it_warms_up_leaves_it_for_the_runner_to_stop(warm) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        warm.serve(plan(["python", "-m", "trainer.train"]), interrupted)
    proc = warm.proc
    warm.stop()
    assert proc.poll() is not None and warm.directory is None
