"""The embedded engine's trial life cycle (issue 7): what finished counts, no process outlives its trial.

Each test here failed on the engine before issue 7: a trial that finished after its runner was
SIGKILLed was recorded Killed; a missing Worker executable was a traceback with the Master left
running; activeDeadlineSeconds was ignored; a failure message ended at "last lines of its log:".
"""

from __future__ import annotations

import copy
import dataclasses
import json
import signal
import time

import optuna
import psutil
import pytest

from experiments.backends._protocol import (
    EXPERIMENT_FAILED,
    EXPERIMENT_SUCCEEDED,
    REASON_KILLED,
    TRIAL_FAILED,
    TRIAL_RUNNING,
    TRIAL_SUCCEEDED,
)
from experiments.ranking import optimal_trial
from tests.experiments.backends._local_helpers import make_experiment, runner_subprocess, wait_until


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def records(tmp_path) -> list[dict]:
    folder = tmp_path / "records"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def with_spec(experiment, edit):
    """The experiment with its trialSpec changed by ``edit(spec)`` (a deep copy)."""
    spec = copy.deepcopy(dict(experiment.trial_template.trial_spec))
    edit(spec)
    return dataclasses.replace(
        experiment, trial_template=dataclasses.replace(experiment.trial_template, trial_spec=spec)
    )


def container(spec, role="Master"):
    replica = spec["spec"]["pytorchReplicaSpecs"][role]
    replica["template"] = copy.deepcopy(replica["template"])  # the helper shares one template
    return replica["template"]["spec"]["containers"][0]


@pytest.mark.slow
def test_a_trial_that_finishes_after_its_runner_was_sigkilled_counts_for_the_optimal_trial(backend, tmp_path):
    # The best trial (0.9) is still running when the runner dies; it finishes on its own before `status`.
    exp = make_experiment("orphan", tmp_path, plan="0.5;0.9,0.9|sleep=1.5", max_trials=2, workers=1)
    handle = backend.submit(exp)
    runner = runner_subprocess(backend.store.url, tmp_path, "orphan")
    try:
        wait_until(
            lambda: [t.condition for t in handle.trials()] == [TRIAL_SUCCEEDED, TRIAL_RUNNING],
            timeout=60,
            process=runner,
        )
        trial = handle.trials()[1].name
        # Its Master has started (the stand-in writes a record as it starts), then the runner dies.
        wait_until(lambda: (tmp_path / "records" / f"{trial}-0.json").exists(), timeout=30, process=runner)
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    # Wait for the orphaned replicas to end by themselves (their exit codes land next to their logs).
    wait_until(lambda: len(list((tmp_path / ".katib" / "orphan" / trial).glob("*.exit"))) == 2, timeout=30)

    status = backend.get("orphan").status()
    assert (status.condition, status.reason) == (EXPERIMENT_FAILED, REASON_KILLED)  # nobody runs it now
    finished = {t.name: t for t in status.trials}[trial]
    assert (finished.condition, finished.reason) == (TRIAL_SUCCEEDED, "TrialSucceeded")
    assert [o.value for o in finished.observations] == ["0.9", "0.9"]
    assert status.optimal_trial.name == trial == optimal_trial(status.trials, exp.objective).name
    # Optuna knows it too: COMPLETE with its value and its learning curve.
    study = optuna.load_study(study_name="orphan", storage=backend.store.url)
    done = next(t for t in study.trials if t.user_attrs.get("katib_trial") == trial)
    assert done.state == optuna.trial.TrialState.COMPLETE and done.value == 0.9
    assert done.intermediate_values == {1: 0.9, 2: 0.9}


@pytest.mark.slow
def test_a_missing_worker_executable_fails_the_trial_before_any_replica_starts(backend, tmp_path):
    exp = with_spec(
        make_experiment("noworker", tmp_path, max_trials=1, workers=1),
        lambda spec: container(spec, "Worker").update(command=["no-such-program-xyz"]),
    )
    status = backend.submit(exp).wait(timeout=60)
    (trial,) = status.trials
    assert trial.condition == TRIAL_FAILED
    assert "replica worker-0: command not found: 'no-such-program-xyz'" in trial.message
    assert records(tmp_path) == []  # the Master never started, so it cannot be left running
    assert status.condition == EXPERIMENT_SUCCEEDED  # the budget is spent; not left Running
    log = backend.logs("noworker", trial.name)["worker-0"]
    assert any("command not found" in line for line in log)


@pytest.mark.slow
def test_a_trial_command_path_that_does_not_exist_is_a_failed_trial_not_a_traceback(backend, tmp_path):
    exp = with_spec(
        make_experiment("nopath", tmp_path, max_trials=1, workers=0),
        lambda spec: container(spec).update(command=["./scripts/missing-train.sh"]),
    )
    status = backend.submit(exp).wait(timeout=60)
    (trial,) = status.trials
    assert trial.condition == TRIAL_FAILED
    assert "'./scripts/missing-train.sh' does not exist" in trial.message


@pytest.mark.slow
def test_a_failed_trials_message_carries_the_last_lines_of_its_log(backend, tmp_path):
    # A shell's own "not found" (no Python exception): it must be in the message's first line.
    exp = with_spec(
        make_experiment("shellfail", tmp_path, max_trials=1, workers=0),
        lambda spec: container(spec).update(
            command=["sh", "-c", "echo preparing; nonexistent-tool-abc --go; exit 3"], args=[]
        ),
    )
    status = backend.submit(exp).wait(timeout=60)
    (trial,) = status.trials
    first, *rest = trial.message.splitlines()
    assert first.startswith("replica master-0 exited with code 3: ") and "not found" in first
    assert rest[0] == "last lines of its log:" and "preparing" in rest


@pytest.mark.slow
def test_active_deadline_seconds_kills_the_trial_like_the_training_operator(backend, tmp_path):
    exp = with_spec(
        make_experiment(
            "deadline", tmp_path, plan="0.5,0.6,0.7|sleep=5", max_trials=1, workers=1, extra_args=("--child",)
        ),
        lambda spec: spec["spec"].update(runPolicy={"activeDeadlineSeconds": 2}),
    )
    started = time.monotonic()
    status = backend.submit(exp).wait(timeout=60)
    assert time.monotonic() - started < 20
    (trial,) = status.trials
    assert (trial.condition, trial.reason) == (TRIAL_FAILED, "DeadlineExceeded")
    assert "active longer than specified deadline" in trial.message
    for record in records(tmp_path):
        assert gone(record["pid"])
        if "child_pid" in record:
            assert gone(record["child_pid"])


def test_every_objective_report_is_an_optuna_intermediate_value_and_the_study_has_katibs_names(
    backend, tmp_path
):
    exp = make_experiment("curves", tmp_path, plan="0.5,0.6,0.7;0.2", max_trials=2, workers=0)
    backend.submit(exp).wait(timeout=60)
    study = optuna.load_study(study_name="curves", storage=backend.store.url)
    assert [t.intermediate_values for t in study.trials] == [{1: 0.5, 2: 0.6, 3: 0.7}, {1: 0.2}]
    assert study.metric_names == ["accuracy"]
    assert study.user_attrs["katib_parameters"] == ["lr", "tag"]
    assert study.user_attrs["katib_objective"] == "accuracy"


def test_renaming_at_submit_must_pass_katibs_name_rule(backend, tmp_path):
    from experiments.spec import InvalidExperimentError

    exp = make_experiment("fine", tmp_path)
    for bad in ("Bad Name ünï", "../../outside", "a" * 60):
        with pytest.raises(InvalidExperimentError, match=r"metadata\.name"):
            backend.submit(exp, name=bad)
    assert backend.store.names() == []


@pytest.mark.slow
def test_an_experiment_left_by_the_old_engine_is_settled_and_resumes_with_curves(backend, tmp_path):
    """Before issue 7 a trial kept no replica files, only [pid, start time] of its process groups; its
    study had no metric names. Such an experiment still settles (the orphan is stopped, the trial Killed)
    and resumes, and the trials it runs from then on carry intermediate values."""
    import subprocess

    exp = make_experiment("legacy", tmp_path, plan="0.4;0.6", max_trials=1, workers=0)
    backend.submit(exp)
    orphan = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        study = optuna.load_study(study_name="legacy", storage=backend.store.url)
        trial = study.ask()
        trial_id = backend.store.storage.get_trial_id_from_study_id_trial_number(
            backend.store.storage.get_study_id_from_name("legacy"), trial.number
        )
        backend.store.set_trial_attrs(
            trial_id,
            katib_trial="legacy-oldtrial",
            parameters={"lr": "0.05", "tag": "a;touch PWNED"},
            observations=[],
            host=__import__("socket").gethostname(),
            processes=[[orphan.pid, psutil.Process(orphan.pid).create_time()]],
            condition=TRIAL_RUNNING,
        )
        backend.store.set_study_attrs(
            "legacy", runner={"host": "elsewhere", "pid": 1, "create_time": 0}, condition="Running"
        )
        status = backend.get("legacy").status()
        assert (status.condition, status.reason) == (EXPERIMENT_FAILED, REASON_KILLED)
        assert [(t.name, t.condition) for t in status.trials] == [("legacy-oldtrial", "Killed")]
        assert orphan.wait(timeout=10) is not None  # its process group was stopped
    finally:
        if orphan.poll() is None:
            orphan.kill()
    final = backend.resume("legacy").wait(timeout=60)
    assert final.condition == EXPERIMENT_SUCCEEDED
    new = [
        t for t in optuna.load_study(study_name="legacy", storage=backend.store.url).trials if t.number > 0
    ]
    assert [t.intermediate_values for t in new] == [{1: 0.4}]


@pytest.mark.slow
def test_status_shows_the_progress_of_a_trial_whose_runner_is_gone(backend, tmp_path):
    exp = make_experiment("progress", tmp_path, plan="0.3,0.4,0.5,0.6|sleep=0.8", max_trials=1, workers=0)
    handle = backend.submit(exp)
    runner = runner_subprocess(backend.store.url, tmp_path, "progress")
    try:
        trial = wait_until(lambda: handle.trials() and handle.trials()[0].name, timeout=60, process=runner)
        wait_until(lambda: (tmp_path / "records" / f"{trial}-0.json").exists(), timeout=30, process=runner)
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()

    def reported_while_running():
        (record,) = backend.get("progress").trials()
        assert record.condition == TRIAL_RUNNING, "it ended before status saw its progress"
        return len(record.observations) >= 2

    wait_until(reported_while_running, timeout=30)
    final = backend.resume("progress").wait(timeout=60)
    (record,) = final.trials
    assert record.condition == TRIAL_SUCCEEDED
    assert [o.value for o in record.observations] == ["0.3", "0.4", "0.5", "0.6"]
