"""SIGKILL the runner at random moments across a real small experiment, then ``status`` + ``resume``.

Each kill may land anywhere: while the runner starts, adopts, asks Optuna, spawns replicas, writes a
trial's attributes one by one, or tells Optuna. After every kill ``status`` (another process's view)
must show nothing finished lost or changed and the experiment not Running; in the end the budget is
complete, no trial process is left, and the optimal trial is the best kept trial by experiments.ranking.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import time

import psutil
import pytest

from experiments.backends._protocol import (
    EXPERIMENT_CREATED,
    EXPERIMENT_FAILED,
    EXPERIMENT_RESTARTING,
    EXPERIMENT_RUNNING,
    EXPERIMENT_SUCCEEDED,
    REASON_KILLED,
    REASON_MAX_TRIALS_REACHED,
    TRIAL_FINISHED,
    TRIAL_KILLED,
    TRIAL_SUCCEEDED,
)
from experiments.backends.local import LocalBackend
from experiments.ranking import optimal_trial
from tests.experiments.backends._local_helpers import make_experiment, runner_subprocess

KILLS = 30
SEED = 20260701


def finished(status) -> dict:
    return {
        t.name: (t.condition, t.reason, t.observations, t.metrics)
        for t in status.trials
        if t.condition in TRIAL_FINISHED
    }


def counted(status) -> int:
    return sum(
        1
        for t in status.trials
        if t.condition in TRIAL_FINISHED and not (t.condition == TRIAL_KILLED and t.reason == REASON_KILLED)
    )


def live_trial_processes(workdir) -> list[int]:
    """Replica wrappers (their pid files) and the programs they ran (the stand-in's own records)."""
    pids = [int(p.read_text() or 0) for p in (workdir / ".katib").rglob("*.pid")]
    pids += [json.loads(p.read_text())["pid"] for p in (workdir / "records").glob("*.json")]
    out = []
    for pid in pids:
        try:
            if pid and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def _drive(url: str, workdir, name: str) -> None:
    LocalBackend(storage=url, workdir=workdir).get(name).wait()


def forked_runner(url: str, workdir, name: str):
    """A runner in a forked child: this process's imports are already done, so every moment of its life is
    spent running the experiment (a fresh interpreter would spend most of a short life importing)."""
    context = multiprocessing.get_context("fork")
    process = context.Process(target=_drive, args=(url, workdir, name), daemon=False)
    process.start()
    return process


@pytest.mark.slow
def test_sigkill_the_runner_thirty_times_loses_nothing_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("KATIB_STORAGE", raising=False)
    rng = random.Random(SEED)
    backend = LocalBackend(workdir=tmp_path)
    exp = make_experiment(
        "kills",
        tmp_path,
        plan="x",
        sleep=0.12,
        workers=1,
        max_trials=14,
        parallel=2,
        extra_args=("--score", "--epochs=3"),
        resume_policy="LongRunning",
    )
    backend.submit(exp)
    budget = exp.max_trial_count
    kept: dict = {}
    kills = mid_run = 0
    started = time.monotonic()
    while kills < KILLS:
        runner = forked_runner(backend.store.url, tmp_path, "kills")
        try:
            time.sleep(rng.uniform(0.0, 1.5))
        finally:
            if runner.is_alive():
                runner.kill()
                kills += 1
            runner.join(timeout=30)
        status = backend.get("kills").status()
        assert status.condition != EXPERIMENT_RUNNING, "the experiment stays Running with nobody running it"
        now_finished = finished(status)
        for name, before in kept.items():
            assert now_finished.get(name) == before, f"finished trial {name} was lost or changed"
        kept = now_finished
        if status.condition == EXPERIMENT_SUCCEEDED:
            budget += 2  # keep the experiment going until every kill has landed
            backend.resume("kills", max_trial_count=budget)
        elif status.condition == EXPERIMENT_FAILED:
            assert status.reason == REASON_KILLED and "resume" in status.message
            mid_run += 1
            backend.resume("kills")
        else:  # killed before it took the experiment: still Created / Restarting, nothing to settle
            assert status.condition in (EXPERIMENT_CREATED, EXPERIMENT_RESTARTING), status.condition
    # Then let one runner finish the budget undisturbed.
    runner = runner_subprocess(backend.store.url, tmp_path, "kills")
    assert runner.wait(timeout=120) == 0
    final = backend.get("kills").status()
    elapsed = time.monotonic() - started

    assert (final.condition, final.reason) == (EXPERIMENT_SUCCEEDED, REASON_MAX_TRIALS_REACHED), final.message
    assert counted(final) == budget
    for name, before in kept.items():
        assert finished(final)[name] == before
    # Every Succeeded trial has its whole learning curve (three reports), however often its runner died.
    for trial in final.trials:
        if trial.condition == TRIAL_SUCCEEDED:
            assert len([o for o in trial.observations if o.name == "accuracy"]) == 3, trial
    assert final.optimal_trial is not None
    assert final.optimal_trial.name == optimal_trial(final.trials, exp.objective).name
    assert live_trial_processes(tmp_path) == []
    succeeded = [t for t in final.trials if t.condition == TRIAL_SUCCEEDED]
    assert len(succeeded) >= budget // 2  # most trials ran to the end despite the kills
    # Most kills must land while the runner drives trials, not while it is still importing.
    assert mid_run >= KILLS // 2, mid_run
    print(f"{kills} kills ({mid_run} mid-run), {len(final.trials)} trials, {elapsed:.1f}s")
