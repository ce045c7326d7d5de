"""Katib-shaped ``.status``: field names, bucketing, omitempty, conditions — checked against Katib's Go types."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from experiments.backends._protocol import ExperimentStatus, MetricSummary, TrialRecord
from experiments.status import katib_experiment, katib_status, katib_trial, rfc3339

T0 = datetime(2026, 1, 1, 10, 0, 0, tzinfo=timezone.utc)


def trial(name: str, condition: str, acc: str | None = None, **extra) -> TrialRecord:
    metrics = (MetricSummary("eval_accuracy", min=acc, max=acc, latest=acc),) if acc is not None else ()
    return TrialRecord(
        name=name,
        parameters={"lr": "1e-05", "batch_size": "16"},
        condition=condition,
        metrics=metrics,
        start_time=T0,
        completion_time=T0 + timedelta(seconds=30) if condition not in ("Running", "Created") else None,
        **extra,
    )


TRIALS = (
    trial("exp-aaaaaaaa", "Succeeded", "0.71"),
    trial("exp-bbbbbbbb", "Failed"),
    trial("exp-cccccccc", "EarlyStopped", "0.40"),
    trial("exp-dddddddd", "MetricsUnavailable"),
    trial("exp-eeeeeeee", "Killed"),
    trial("exp-ffffffff", "Running", "0.50"),
    trial("exp-gggggggg", "Created"),
    trial("exp-hhhhhhhh", "Succeeded", "0.80"),
)


def test_every_trial_lands_in_katibs_list_and_counter():
    status = ExperimentStatus(name="exp", condition="Running", trials=TRIALS, start_time=T0)
    doc = katib_status(status)
    assert doc["succeededTrialList"] == ["exp-aaaaaaaa", "exp-hhhhhhhh"]
    assert doc["failedTrialList"] == ["exp-bbbbbbbb"]
    assert doc["earlyStoppedTrialList"] == ["exp-cccccccc"]
    assert doc["metricsUnavailableTrialList"] == ["exp-dddddddd"]
    assert doc["killedTrialList"] == ["exp-eeeeeeee"]
    assert doc["runningTrialList"] == ["exp-ffffffff"]
    assert doc["pendingTrialList"] == ["exp-gggggggg"]
    assert doc["trials"] == 8
    assert doc["trialsSucceeded"] == 2
    assert doc["trialsFailed"] == 1
    assert doc["trialsEarlyStopped"] == 1
    assert doc["trialMetricsUnavailable"] == 1
    assert doc["trialsKilled"] == 1
    assert doc["trialsRunning"] == 1
    assert doc["trialsPending"] == 1
    assert doc["startTime"] == "2026-01-01T10:00:00Z"
    assert "completionTime" not in doc  # still running


def test_empty_lists_and_zero_counters_are_omitted_like_go_omitempty():
    status = ExperimentStatus(name="exp", condition="Running", trials=TRIALS[:1], start_time=T0)
    doc = katib_status(status)
    assert doc["trials"] == 1 and doc["trialsSucceeded"] == 1
    for absent in (
        "failedTrialList",
        "trialsFailed",
        "runningTrialList",
        "trialsRunning",
        "pendingTrialList",
    ):
        assert absent not in doc


def test_optimal_trial_has_katibs_shape():
    best = TRIALS[-1]
    status = ExperimentStatus(name="exp", condition="Running", trials=TRIALS, optimal_trial=best)
    optimal = katib_status(status)["currentOptimalTrial"]
    assert optimal == {
        "bestTrialName": "exp-hhhhhhhh",
        "parameterAssignments": [{"name": "lr", "value": "1e-05"}, {"name": "batch_size", "value": "16"}],
        "observation": {
            "metrics": [{"name": "eval_accuracy", "min": "0.80", "max": "0.80", "latest": "0.80"}]
        },
    }


def test_no_optimal_trial_yet_is_an_empty_struct():
    status = ExperimentStatus(name="exp", condition="Created")
    assert katib_status(status)["currentOptimalTrial"] == {"observation": {}}


@pytest.mark.parametrize(
    ("condition", "reason", "expected"),
    [
        ("Created", "", [("Created", "True", "ExperimentCreated")]),
        ("Running", "", [("Created", "True", "ExperimentCreated"), ("Running", "True", "ExperimentRunning")]),
        (
            "Succeeded",
            "ExperimentMaxTrialsReached",
            [
                ("Created", "True", "ExperimentCreated"),
                ("Running", "False", "ExperimentRunning"),
                ("Succeeded", "True", "ExperimentMaxTrialsReached"),
            ],
        ),
        (
            "Failed",
            "ExperimentMaxFailedTrialsReached",
            [
                ("Created", "True", "ExperimentCreated"),
                ("Running", "False", "ExperimentRunning"),
                ("Failed", "True", "ExperimentFailed"),  # the reason string Katib's controller writes
            ],
        ),
    ],
)
def test_conditions_follow_katibs_controller(condition, reason, expected):
    end = T0 + timedelta(minutes=5)
    status = ExperimentStatus(
        name="exp", condition=condition, reason=reason, start_time=T0, completion_time=end
    )
    conditions = katib_status(status)["conditions"]
    assert [(c["type"], c["status"], c.get("reason")) for c in conditions] == expected
    assert all(set(c) >= {"type", "status", "lastUpdateTime"} for c in conditions)
    if status.finished:
        assert conditions[-1]["lastUpdateTime"] == "2026-01-01T10:05:00Z"
        assert conditions[-1]["message"].startswith("Experiment has")
        assert katib_status(status)["completionTime"] == "2026-01-01T10:05:00Z"


def test_goal_reached_message_is_katibs():
    status = ExperimentStatus(
        name="exp", condition="Succeeded", reason="ExperimentGoalReached", start_time=T0
    )
    last = katib_status(status)["conditions"][-1]
    assert last["message"] == "Experiment has succeeded because Objective goal has reached"


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (None, None),
        (datetime(2026, 1, 1, 10, 0, 0, 999_000), "2026-01-01T10:00:00Z"),  # naive = UTC, whole seconds
        (datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))), "2026-01-01T10:00:00Z"),
    ],
)
def test_rfc3339_is_metav1_time(moment, expected):
    assert rfc3339(moment) == expected


def test_trial_document_is_a_katib_trial():
    doc = katib_trial(TRIALS[2], "exp")
    assert doc["kind"] == "Trial" and doc["apiVersion"] == "kubeflow.org/v1beta1"
    assert doc["metadata"]["labels"] == {"katib.kubeflow.org/experiment": "exp"}
    assert doc["spec"]["parameterAssignments"][0] == {"name": "lr", "value": "1e-05"}
    assert [c["type"] for c in doc["status"]["conditions"]] == ["Created", "Running", "EarlyStopped"]
    assert doc["status"]["conditions"][-1]["reason"] == "TrialEarlyStopped"
    assert doc["status"]["observation"]["metrics"][0]["latest"] == "0.40"


def test_experiment_document_keeps_spec_and_metadata():
    status = ExperimentStatus(name="renamed", condition="Running", start_time=T0)
    whole = {
        "apiVersion": "kubeflow.org/v1beta1",
        "metadata": {"name": "orig", "labels": {"a": "b"}},
        "spec": {"x": 1},
    }
    doc = katib_experiment(status, whole)
    assert doc["kind"] == "Experiment"
    assert doc["metadata"]["name"] == "renamed"
    assert doc["metadata"]["labels"] == {"a": "b"}
    assert doc["metadata"]["creationTimestamp"] == "2026-01-01T10:00:00Z"
    assert doc["spec"] == {"x": 1}
    assert doc["status"]["conditions"][0]["type"] == "Created"


def test_katibs_messages_for_known_ends_and_the_backends_for_local_ones():
    local = ExperimentStatus(
        name="exp",
        condition="Failed",
        reason="ExperimentKilled",
        message="continue with `katib experiment resume exp`",
    )
    assert katib_status(local)["conditions"][-1]["message"] == "continue with `katib experiment resume exp`"
    done = ExperimentStatus(
        name="exp", condition="Succeeded", reason="ExperimentMaxTrialsReached", message="3 done"
    )
    assert katib_status(done)["conditions"][-1]["message"] == (
        "Experiment has succeeded because max trial count has reached"
    )
