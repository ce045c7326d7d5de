"""Stopping trials and runners: medianstop, Ctrl-C, SIGTERM and SIGKILL, then resume with nothing lost."""

from __future__ import annotations

import json
import os
import signal

import psutil
import pytest

from experiments.backends._protocol import (
    EXPERIMENT_FAILED,
    EXPERIMENT_SUCCEEDED,
    REASON_KILLED,
    REASON_MAX_TRIALS_REACHED,
    TRIAL_EARLY_STOPPED,
    TRIAL_KILLED,
    TRIAL_RUNNING,
    TRIAL_SUCCEEDED,
)
from experiments.spec import EarlyStopping, Setting
from tests.experiments.backends._local_helpers import make_experiment, runner_subprocess, wait_until


def trial_record(tmp_path, trial_name: str, rank: int = 0) -> dict:
    return json.loads((tmp_path / "records" / f"{trial_name}-{rank}.json").read_text())


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def conditions(handle) -> list[str]:
    return [t.condition for t in handle.trials()]


@pytest.mark.slow
def test_medianstop_stops_a_bad_trial_at_start_step_and_its_whole_tree(backend, tmp_path):
    # Two good trials make the median (mean of their first-2 averages = 0.9); the third reports 0.1, 0.1, ...
    # and must be stopped exactly at its 2nd report, with its child process gone too.
    exp = make_experiment(
        "median",
        tmp_path,
        plan="0.9,0.9,0.9;0.9,0.9,0.9;0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1|sleep=0.6",
        sleep=0.02,
        max_trials=3,
        workers=0,
        extra_args=("--child",),
        early_stopping=EarlyStopping(
            "medianstop", (Setting("min_trials_required", "2"), Setting("start_step", "2"))
        ),
    )
    status = backend.submit(exp).wait()

    assert [t.condition for t in status.trials] == [TRIAL_SUCCEEDED, TRIAL_SUCCEEDED, TRIAL_EARLY_STOPPED]
    stopped = status.trials[2]
    assert [o.value for o in stopped.observations if o.name == "accuracy"] == ["0.1", "0.1"]
    record = trial_record(tmp_path, stopped.name)
    assert gone(record["pid"]) and gone(record["child_pid"])
    assert (status.condition, status.reason) == (EXPERIMENT_SUCCEEDED, REASON_MAX_TRIALS_REACHED)


@pytest.mark.slow
def test_resume_after_the_runner_is_sigkilled_adopts_the_trial_still_running(backend, tmp_path):
    # On a cluster a trial outlives a crashed controller; locally its processes outlive the runner, and
    # the next runner watches it to the end instead of killing it (issue 7).
    exp = make_experiment(
        "crash",
        tmp_path,
        plan="0.5;0.6;0.7,0.7|sleep=2;0.8;0.9",
        max_trials=4,
        workers=1,
        extra_args=("--child",),
    )
    handle = backend.submit(exp)
    runner = runner_subprocess(backend.store.url, tmp_path, "crash")
    try:
        wait_until(
            lambda: conditions(handle) == [TRIAL_SUCCEEDED, TRIAL_SUCCEEDED, TRIAL_RUNNING],
            timeout=90,
            process=runner,
        )
        running = handle.trials()[2].name
        record = wait_until(
            lambda: (tmp_path / "records" / f"{running}-0.json").exists() and trial_record(tmp_path, running)
        )
        finished = {t.name: t for t in handle.trials()[:2]}
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()

    # status reconciles: the experiment is no longer Running (nobody runs it); the live trial is kept.
    status = backend.get("crash").status()
    assert (status.condition, status.reason) == (EXPERIMENT_FAILED, REASON_KILLED)
    assert "adopted" in status.message and "resume" in status.message
    assert [t.condition for t in status.trials] == [TRIAL_SUCCEEDED, TRIAL_SUCCEEDED, TRIAL_RUNNING]
    assert not gone(record["pid"])

    final = backend.resume("crash").wait()
    assert (final.condition, final.reason) == (EXPERIMENT_SUCCEEDED, REASON_MAX_TRIALS_REACHED)
    by_name = {t.name: t for t in final.trials}
    for name, before in finished.items():  # nothing completed is lost or changed
        assert by_name[name].condition == TRIAL_SUCCEEDED
        assert by_name[name].observations == before.observations
    assert [t.condition for t in final.trials] == [TRIAL_SUCCEEDED] * 4
    assert [o.value for o in by_name[running].observations] == ["0.7", "0.7"]
    assert final.optimal_trial.metric("accuracy").max == "0.8"
    assert wait_until(lambda: gone(record["pid"]) and gone(record["child_pid"]), timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_kills_running_trials_keeps_finished_ones_and_is_resumable(backend, tmp_path, sig):
    exp = make_experiment(
        "stop",
        tmp_path,
        plan="0.5;0.6,0.6|sleep=30;0.7",
        max_trials=3,
        parallel=1,
        workers=1,
        extra_args=("--child",),
    )
    handle = backend.submit(exp)
    runner = runner_subprocess(backend.store.url, tmp_path, "stop")
    try:
        wait_until(lambda: conditions(handle) == [TRIAL_SUCCEEDED, TRIAL_RUNNING], timeout=90, process=runner)
        running = handle.trials()[1].name
        master = wait_until(
            lambda: (tmp_path / "records" / f"{running}-0.json").exists() and trial_record(tmp_path, running)
        )
        worker = wait_until(
            lambda: (
                (tmp_path / "records" / f"{running}-1.json").exists() and trial_record(tmp_path, running, 1)
            )
        )
        runner.send_signal(sig)
        assert runner.wait(timeout=30) != 0
    finally:
        if runner.poll() is None:
            runner.kill()

    status = backend.get("stop").status()
    assert (status.condition, status.reason) == (EXPERIMENT_FAILED, REASON_KILLED)
    assert "resume" in status.message
    assert [t.condition for t in status.trials] == [TRIAL_SUCCEEDED, TRIAL_KILLED]
    for pid in (master["pid"], master["child_pid"], worker["pid"]):
        assert gone(pid), f"process {pid} of the interrupted trial is still running"

    final = backend.resume("stop").wait()
    assert (final.condition, final.reason) == (EXPERIMENT_SUCCEEDED, REASON_MAX_TRIALS_REACHED)
    assert [t.condition for t in final.trials] == [
        TRIAL_SUCCEEDED,
        TRIAL_KILLED,
        TRIAL_SUCCEEDED,
        TRIAL_SUCCEEDED,
    ]
    assert os.path.isdir(tmp_path / ".katib" / "stop" / final.trials[0].name)
