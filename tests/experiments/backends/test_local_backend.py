"""The local backend end to end with the stand-in trial program: budget, goal, failures, collectors, API."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from experiments.backends._protocol import (
    EXPERIMENT_FAILED,
    EXPERIMENT_SUCCEEDED,
    REASON_GOAL_REACHED,
    REASON_MAX_FAILED_TRIALS_REACHED,
    REASON_MAX_TRIALS_REACHED,
    TRIAL_FAILED,
    TRIAL_METRICS_UNAVAILABLE,
    TRIAL_SUCCEEDED,
)
from experiments.backends.local import ExperimentExistsError, UnsupportedTrialError
from experiments.errors import KatibSuiteError, NotFoundError
from experiments.spec import MetricsCollector
from tests.experiments.backends._local_helpers import make_experiment


def records(tmp_path: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (tmp_path / "records").glob("*.json")}


def test_pytorchjob_replicas_get_the_training_operator_env_and_only_rank0_reports(backend, tmp_path):
    exp = make_experiment("env", tmp_path, plan="0.5,0.7", max_trials=1)
    status = backend.submit(exp).wait()

    assert (status.condition, status.reason) == (EXPERIMENT_SUCCEEDED, REASON_MAX_TRIALS_REACHED)
    (trial,) = status.trials
    assert re.fullmatch(r"env-[a-z]{8}", trial.name)
    assert trial.condition == TRIAL_SUCCEEDED
    assert [o.value for o in trial.observations if o.name == "accuracy"] == ["0.5", "0.7"]
    assert all(o.timestamp is not None for o in trial.observations)
    assert status.optimal_trial.name == trial.name and trial.metric("accuracy").max == "0.7"

    seen = records(tmp_path)
    master, worker = seen[f"{trial.name}-0"], seen[f"{trial.name}-1"]
    assert master["env"]["RANK"] == "0" and worker["env"]["RANK"] == "1"
    assert worker["env"]["PET_NODE_RANK"] == "1"
    for env in (master["env"], worker["env"]):
        assert env["MASTER_ADDR"] == env["PET_MASTER_ADDR"] == "127.0.0.1"
        assert env["WORLD_SIZE"] == env["PET_NNODES"] == "2"
        assert env["PET_NPROC_PER_NODE"] == "1"
        assert env["PYTHONUNBUFFERED"] == "1"
        assert env["KATIB_TRIAL_NAME"] == trial.name
        assert env["STANDIN_FROM_TEMPLATE"] == "yes"  # the container's own env entries
    assert master["env"]["MASTER_PORT"] == worker["env"]["MASTER_PORT"]
    # No shell: a parameter value full of shell syntax arrives as one literal argument.
    assert "--tag=a;touch PWNED" in master["argv"]
    assert not (tmp_path / "PWNED").exists()

    logs = backend.logs("env", trial.name)  # text lines per replica (the backend protocol)
    assert set(logs) == {"master-0", "worker-0"}
    assert any("accuracy=0.7" in line for line in logs["master-0"])
    assert not any("accuracy" in line for line in logs["worker-0"])
    assert trial.log_dir == tmp_path / ".katib" / "env" / trial.name
    assert logs["master-0"] == (trial.log_dir / "master-0.log").read_text().splitlines()


def test_failed_trials_end_the_experiment_at_max_failed_trial_count(backend, tmp_path):
    exp = make_experiment("failing", tmp_path, plan="0.5|exit=3", max_trials=5, max_failed=2)
    status = backend.submit(exp).wait()

    assert (status.condition, status.reason) == (EXPERIMENT_FAILED, REASON_MAX_FAILED_TRIALS_REACHED)
    assert [t.condition for t in status.trials] == [TRIAL_FAILED, TRIAL_FAILED]
    message = status.trials[0].message
    assert "exited with code 3" in message and "failing on purpose" in message


def test_a_trial_without_objective_is_metrics_unavailable_and_counts_as_failed(backend, tmp_path):
    exp = make_experiment("silent", tmp_path, plan="-;0.5", max_trials=3, max_failed=1)
    status = backend.submit(exp).wait()

    (trial,) = status.trials
    assert trial.condition == TRIAL_METRICS_UNAVAILABLE
    assert "accuracy" in trial.message
    assert (status.condition, status.reason) == (EXPERIMENT_FAILED, REASON_MAX_FAILED_TRIALS_REACHED)
    assert status.optimal_trial is None


def test_a_metrics_unavailable_trial_keeps_no_additional_metrics_as_katib_does(backend, tmp_path):
    # Katib's collector replaces the whole observation log with one "unavailable" objective entry when the
    # objective was never reported (newObservationLog), so the Trial's observation shows every metric
    # unavailable, not the additional metrics it did print.
    exp = make_experiment(
        "partial", tmp_path, plan="0.3,0.2", max_trials=1, extra_args=("--metric=eval_loss",)
    )
    exp = dataclasses.replace(
        exp, objective=dataclasses.replace(exp.objective, additional_metric_names=("eval_loss",))
    )
    status = backend.submit(exp).wait()

    (trial,) = status.trials
    assert trial.condition == TRIAL_METRICS_UNAVAILABLE
    assert [(o.name, o.value) for o in trial.observations] == [("accuracy", "unavailable")]
    assert {(m.name, m.min, m.max, m.latest) for m in trial.metrics} == {
        ("accuracy", "unavailable", "unavailable", "unavailable"),
        ("eval_loss", "unavailable", "unavailable", "unavailable"),
    }
    assert status.optimal_trial is None


def test_reaching_the_goal_ends_the_experiment_early(backend, tmp_path):
    exp = make_experiment("goal", tmp_path, plan="0.5;0.9;0.5;0.5", max_trials=4, goal=0.8)
    handle = backend.submit(exp)
    seen = []
    status = handle.wait(progress=seen.append)

    assert (status.condition, status.reason) == (EXPERIMENT_SUCCEEDED, REASON_GOAL_REACHED)
    assert len(status.trials) == 2
    assert status.optimal_trial.name == status.trials[1].name
    assert handle.optimal_trial().name == status.trials[1].name
    assert seen and seen[-1].condition == EXPERIMENT_SUCCEEDED


@pytest.mark.slow
def test_parallel_trials_run_at_the_same_time(backend, tmp_path):
    exp = make_experiment(
        "parallel", tmp_path, plan="0.1,0.2", sleep=1.0, max_trials=2, parallel=2, workers=0
    )
    status = backend.submit(exp).wait()

    assert [t.condition for t in status.trials] == [TRIAL_SUCCEEDED, TRIAL_SUCCEEDED]
    (a, b) = [records(tmp_path)[f"{t.name}-0"] for t in status.trials]
    assert max(a["start"], b["start"]) < min(a["end"], b["end"]), "the two trials never overlapped"


@pytest.mark.parametrize("file_format", ["TEXT", "JSON"])
def test_file_collector_reads_the_trials_metrics_file(backend, tmp_path, file_format):
    katib_path = "/var/log/katib/metrics.log"
    exp = make_experiment(
        f"file-{file_format.lower()}",
        tmp_path,
        plan="0.4,0.6",
        max_trials=1,
        workers=0,
        extra_args=(f"--file={katib_path}", f"--format={file_format}"),
        collector=MetricsCollector(kind="File", file_path=katib_path, file_format=file_format),
    )
    status = backend.submit(exp).wait()

    (trial,) = status.trials
    assert trial.condition == TRIAL_SUCCEEDED, trial.message
    assert trial.metric("accuracy").max == "0.6"
    assert (trial.log_dir / "metrics.log").is_file()  # the Katib path, remapped per trial
    assert "accuracy" not in (trial.log_dir / "master-0.log").read_text()


def test_submitting_an_existing_name_points_to_resume(backend, tmp_path):
    exp = make_experiment("twice", tmp_path, max_trials=1, workers=0)
    backend.submit(exp)
    with pytest.raises(ExperimentExistsError, match="katib experiment resume twice"):
        backend.submit(exp)


def test_unknown_experiment_lists_the_known_ones(backend, tmp_path):
    backend.submit(make_experiment("known", tmp_path, max_trials=1, workers=0))
    with pytest.raises(NotFoundError, match="known"):
        backend.get("missing")
    assert [s.name for s in backend.list()] == ["known"]


def test_push_collector_is_refused_at_submit(backend, tmp_path):
    exp = make_experiment("push", tmp_path, collector=MetricsCollector(kind="Push"))
    with pytest.raises(UnsupportedTrialError, match="not supported by the local backend"):
        backend.submit(exp)
    assert backend.list() == []


def test_finished_experiment_with_resume_policy_never_is_not_resumed(backend, tmp_path):
    backend.submit(make_experiment("done", tmp_path, max_trials=1, workers=0)).wait()
    with pytest.raises(KatibSuiteError, match="resumePolicy is Never"):
        backend.resume("done", max_trial_count=3)


def test_long_running_experiment_resumes_with_more_trials(backend, tmp_path):
    exp = make_experiment("more", tmp_path, plan="0.5", max_trials=1, workers=0, resume_policy="LongRunning")
    backend.submit(exp).wait()
    status = backend.resume("more", max_trial_count=2).wait()
    assert (status.condition, status.reason) == (EXPERIMENT_SUCCEEDED, REASON_MAX_TRIALS_REACHED)
    assert [t.condition for t in status.trials] == [TRIAL_SUCCEEDED, TRIAL_SUCCEEDED]
    assert backend.get("more").experiment.max_trial_count == 2


def test_delete_removes_the_study_and_the_logs(backend, tmp_path):
    backend.submit(make_experiment("gone", tmp_path, max_trials=1, workers=0)).wait()
    assert (tmp_path / ".katib" / "gone").is_dir()
    backend.delete("gone")
    assert not (tmp_path / ".katib" / "gone").exists()
    with pytest.raises(NotFoundError):
        backend.get("gone")


def test_max_failed_trial_count_zero_ends_only_on_a_failure(backend, tmp_path):
    # Katib counts maxFailedTrialCount 0 as "fail on the first failure", not "fail before starting".
    exp = make_experiment("zero-failures", tmp_path, plan="0.5;0.6", max_trials=2, max_failed=0)
    status = backend.submit(exp).wait()

    assert (status.condition, status.reason) == (EXPERIMENT_SUCCEEDED, REASON_MAX_TRIALS_REACHED)
    assert [t.condition for t in status.trials] == [TRIAL_SUCCEEDED, TRIAL_SUCCEEDED]
