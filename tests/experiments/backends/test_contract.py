"""One contract, both backends: the read side of the protocol behaves the same whether the local backend ran
the experiment (Optuna + real processes of the stand-in trial) or Katib did (the stand-in API server holding
the Experiment, Trials, pods and logs as Katib's controllers write them).

The same Experiment and the same three trial outcomes on each: accuracy 0.5 then 0.6; 0.8 then 0.7; 0.4.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from experiments.backends._protocol import EXPERIMENT_SUCCEEDED, TRIAL_CONDITIONS, TRIAL_SUCCEEDED
from experiments.errors import NotFoundError
from experiments.ranking import objective_value, optimal_trial
from experiments.spec import Experiment, to_dict
from tests.experiments.backends._local_helpers import make_experiment

NAME = "contract"
PLAN = ("0.5,0.6", "0.8,0.7", "0.4")  # one entry per trial, in the order they run


@dataclass
class World:
    backend: Any
    experiment: Experiment


def _local(tmp: Path) -> Iterator[World]:
    from experiments.backends.local import LocalBackend

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        mp.delenv("KATIB_STORAGE", raising=False)
        exp = make_experiment(NAME, tmp, plan=";".join(PLAN), max_trials=3, workers=0)
        backend = LocalBackend(storage=f"sqlite:///{tmp / 'contract.db'}", workdir=tmp)
        backend.submit(exp).wait()
        yield World(backend, exp)


def _katib_writes(standin, exp: Experiment, namespace: str) -> None:
    """The Experiment as submitted, then what Katib's controllers write for three trials that ran PLAN."""
    from experiments.backends._protocol import Observation
    from experiments.collector import summarize
    from experiments.spec import render_trial
    from tests.experiments.backends.cluster.katib_world import EXP_API, _cond, add_pods

    body = to_dict(exp)
    body["metadata"]["namespace"] = namespace
    standin.add(EXP_API, "experiments", body, namespace=namespace)
    names = []
    for index, (suffix, values) in enumerate(zip(("aqwhzkrm", "bmtxpcle", "cvnadjoy"), PLAN, strict=True)):
        name = f"{NAME}-{suffix}"
        params = {"lr": f"0.0{index + 2}", "tag": "a;touch PWNED"}
        start, end = f"2026-12-01T10:0{index}:00Z", f"2026-12-01T10:0{index}:30Z"
        lines = [f"2026-12-01T10:0{index}:{10 * (i + 1)}Z step={i + 1} accuracy={v}"
                 for i, v in enumerate(values.split(","))]  # fmt: skip
        (summary,) = summarize([Observation("accuracy", v) for v in values.split(",")], ("accuracy",))
        trial = {
            "apiVersion": EXP_API, "kind": "Trial",
            "metadata": {"name": name, "creationTimestamp": start,
                         "labels": {"katib.kubeflow.org/experiment": NAME},
                         "ownerReferences": [{"apiVersion": EXP_API, "kind": "Experiment", "name": NAME,
                                              "uid": "u", "controller": True}]},
            "spec": {"parameterAssignments": [{"name": k, "value": v} for k, v in params.items()],
                     "runSpec": render_trial(exp, params, name, namespace),
                     "primaryContainerName": "pytorch",
                     "primaryPodLabels": {"training.kubeflow.org/job-role": "master"},
                     "metricsCollector": {"collector": {"kind": "StdOut"}}},
            "status": {"startTime": start, "completionTime": end, "conditions": [
                _cond("Created", "True", "TrialCreated", "Trial is created", start),
                _cond("Running", "False", "TrialRunning", "Trial is running", end),
                _cond("Succeeded", "True", "TrialSucceeded", "Trial has succeeded", end)],
                "observation": {"metrics": [{"name": "accuracy", "min": summary.min, "max": summary.max,
                                             "latest": summary.latest}]}},
        }  # fmt: skip
        standin.add(EXP_API, "trials", trial, namespace=namespace)
        add_pods(standin, name, lines, namespace)
        names.append(name)

    def end(obj: dict) -> None:
        t0, t1 = "2026-12-01T10:00:00Z", "2026-12-01T10:03:00Z"
        obj["status"] = {
            "startTime": t0, "completionTime": t1, "trials": 3, "trialsSucceeded": 3,
            "succeededTrialList": names, "currentOptimalTrial": {"observation": {}},
            "conditions": [
                _cond("Created", "True", "ExperimentCreated", "Experiment is created", t0),
                _cond("Running", "False", "ExperimentRunning", "Experiment is running", t1),
                _cond("Succeeded", "True", "ExperimentMaxTrialsReached",
                      "Experiment has succeeded because max trial count has reached", t1)],
        }  # fmt: skip

    standin.update(EXP_API, "experiments", NAME, namespace, end)


def _cluster(tmp: Path) -> Iterator[World]:
    from experiments.backends.cluster import ClusterBackend
    from tests.experiments.backends.cluster.katib_world import install_platform
    from tests.k8s_standin import K8sStandin

    standin = K8sStandin().start()
    try:
        install_platform(standin, "team")
        kubeconfig = standin.write_kubeconfig(tmp / "kubeconfig", namespace="team")
        exp = make_experiment(NAME, tmp, plan=";".join(PLAN), max_trials=3, workers=0)
        _katib_writes(standin, exp, "team")
        yield World(ClusterBackend(kubeconfig=str(kubeconfig)), exp)
    finally:
        standin.stop()


@pytest.fixture(scope="module", params=["local", "cluster"])
def world(request, tmp_path_factory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(request.param)
    yield from (_local if request.param == "local" else _cluster)(tmp)


def _accuracy(trial) -> tuple[str, str]:
    summary = trial.metric("accuracy")
    return summary.max, summary.latest


def test_status_has_the_same_shape(world):
    status = world.backend.get(NAME).status()
    assert status.name == NAME and status.backend == world.backend.name
    assert (status.condition, status.reason) == (EXPERIMENT_SUCCEEDED, "ExperimentMaxTrialsReached")
    assert status.finished and status.max_trial_count == 3
    assert status.start_time is not None and status.completion_time is not None
    assert status.start_time.tzinfo is not None
    assert len(status.trials) == 3 and status.count(TRIAL_SUCCEEDED) == 3


def test_trials_carry_katibs_names_parameters_and_metric_summaries(world):
    trials = world.backend.get(NAME).trials()
    assert sorted(_accuracy(t) for t in trials) == [("0.4", "0.4"), ("0.6", "0.6"), ("0.8", "0.7")]
    for trial in trials:
        assert re.fullmatch(rf"{NAME}-[a-z]{{8}}", trial.name)
        assert trial.condition in TRIAL_CONDITIONS
        assert set(trial.parameters) == {"lr", "tag"}
        assert all(isinstance(v, str) for v in trial.parameters.values())
        assert trial.parameters["tag"] == "a;touch PWNED"
        assert trial.start_time is not None and trial.completion_time >= trial.start_time


def test_optimal_trial_is_the_one_rankings(world):
    handle = world.backend.get(NAME)
    status = handle.status()
    best = optimal_trial(status.trials, world.experiment.objective)
    assert status.optimal_trial.name == best.name == handle.optimal_trial().name
    assert objective_value(best, world.experiment.objective) == 0.8  # metric strategy max (maximize)
    assert [t.name for t in handle.trials()] == [t.name for t in status.trials]  # creation order


def test_status_round_trips_to_the_sdk_model(world):
    from kubeflow.katib import ApiClient

    from experiments.spec._serialize import _deserialize
    from experiments.status import katib_experiment

    handle = world.backend.get(NAME)
    document = katib_experiment(handle.status(), to_dict(handle.experiment))
    model = _deserialize(document, "V1beta1Experiment")
    again = ApiClient().sanitize_for_serialization(model)
    assert again["status"]["currentOptimalTrial"] == document["status"]["currentOptimalTrial"]
    assert again["status"]["trialsSucceeded"] == 3 and again["spec"] == document["spec"]


def test_list_summarises_the_experiment(world):
    (row,) = [s for s in world.backend.list() if s.name == NAME]
    assert (row.condition, row.trials, row.succeeded, row.backend) == ("Succeeded", 3, 3, world.backend.name)


def test_logs_are_text_lines_per_replica(world):
    best = world.backend.get(NAME).optimal_trial()
    logs = world.backend.logs(NAME, best.name)
    assert "master-0" in logs
    for lines in logs.values():
        assert all(isinstance(line, str) and "\n" not in line for line in lines)
    assert [line.split(" ", 1)[1] for line in logs["master-0"] if "accuracy=" in line] == [
        "step=1 accuracy=0.8",
        "step=2 accuracy=0.7",
    ]


def test_unknown_names_are_not_found(world):
    with pytest.raises(NotFoundError):
        world.backend.get("no-such-experiment")


def test_delete_removes_it(world):  # last: it changes the world
    world.backend.delete(NAME)
    with pytest.raises(NotFoundError):
        world.backend.get(NAME)
    assert NAME not in [s.name for s in world.backend.list()]
