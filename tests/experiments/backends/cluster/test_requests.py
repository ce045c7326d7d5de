"""The cluster backend sends the right requests (create, get, list trials, metrics, delete, patch budget,
logs) and reads Katib's objects into the protocol's records."""

from __future__ import annotations

import json

import pytest

from experiments.backends._protocol import EXPERIMENT_SUCCEEDED, TRIAL_EARLY_STOPPED, TRIAL_SUCCEEDED
from experiments.errors import NotFoundError, UsageError
from experiments.ranking import optimal_trial
from experiments.spec._lifecycle import ResumeRefusedError
from tests.experiments.backends.cluster.katib_world import (
    EXP_API,
    NS,
    Outcome,
    cluster_experiment,
    db_manager,
    play_katib,
)

OUTCOMES = [
    Outcome("aaaaaaaa", "1e-4", "16", accuracy=("0.40", "0.55"), losses=("1.4", "1.2")),
    Outcome("bbbbbbbb", "8e-4", "32", accuracy=("0.50", "0.71", "0.69"), losses=("1.3", "0.9", "0.95")),
    Outcome("cccccccc", "3e-3", "64", condition="EarlyStopped", accuracy=("0.30",), losses=("2.0",)),
]


@pytest.fixture
def exp(tmp_path):
    return cluster_experiment(tmp_path)


def test_submit_creates_the_experiment_after_the_preflight_reads(backend, platform, exp):
    handle = backend.submit(exp)
    assert handle.name == "quickstart" and handle.namespace == NS
    methods = [(r.method, r.path) for r in platform.requests]
    assert methods[-1] == ("POST", f"/apis/kubeflow.org/v1beta1/namespaces/{NS}/experiments")
    # Pre-flight reads only, before the one write.
    assert all(m == "GET" for m, _ in methods[:-1])
    read = {p for _, p in methods[:-1]}
    assert {"/version/", "/apis/kubeflow.org/v1beta1", "/apis/kubeflow.org/v1", f"/api/v1/namespaces/{NS}",
            f"/api/v1/namespaces/{NS}/serviceaccounts/katib-suite-trainer",
            f"/api/v1/namespaces/{NS}/secrets/katib-suite-s3"} <= read  # fmt: skip
    assert platform.get(EXP_API, "experiments", "quickstart", NS)["spec"]["maxTrialCount"] == 5


def test_status_and_trials_read_katibs_objects(backend, platform, exp):
    names = play_katib(platform, exp, OUTCOMES)
    platform.clear_requests()
    handle = backend.get("quickstart")
    status = handle.status()
    assert (status.condition, status.reason) == (EXPERIMENT_SUCCEEDED, "ExperimentMaxTrialsReached")
    assert status.backend == "cluster" and status.max_trial_count == 5
    assert [t.name for t in status.trials] == names  # creation order
    first, second, third = status.trials
    assert first.parameters == {"lr": "1e-4", "batch_size": "16"}
    assert (first.condition, first.reason) == (TRIAL_SUCCEEDED, "TrialSucceeded")
    assert third.condition == TRIAL_EARLY_STOPPED
    assert second.metric("eval_accuracy").max == "0.71" and second.metric("eval_accuracy").latest == "0.69"
    assert first.start_time.isoformat() == "2026-12-01T10:00:00+00:00"
    assert second.output_dir == f"s3://katib-suite-models/katib/quickstart/{names[1]}"
    # The one ranking picks the optimal trial (maximize eval_accuracy, strategy max).
    assert status.optimal_trial.name == names[1] == optimal_trial(status.trials, exp.objective).name
    gets = [r for r in platform.requests if r.method == "GET"]
    assert any(r.path.endswith("/experiments/quickstart") for r in gets)
    (listing,) = [r for r in gets if r.path.endswith(f"/namespaces/{NS}/trials")]
    assert listing.query["labelSelector"] == "katib.kubeflow.org/experiment=quickstart"


def test_observations_come_from_katibs_db_manager(platform, exp):
    from experiments.backends.cluster import ClusterBackend

    names = play_katib(platform, exp, OUTCOMES[:1])
    logs = {names[0]: [("2026-12-01T10:00:10Z", "eval_accuracy", "0.40"),
                       ("2026-12-01T10:00:20Z", "eval_accuracy", "0.55"),
                       ("2026-12-01T10:00:20Z", "eval_loss", "1.2")]}  # fmt: skip
    with db_manager(logs) as (address, asked):
        (trial,) = ClusterBackend(namespace=NS, db_manager_address=address).get("quickstart").trials()
    assert asked == names
    assert [(o.name, o.value) for o in trial.observations] == [(n, v) for _, n, v in logs[names[0]]]
    assert trial.observations[0].timestamp.isoformat() == "2026-12-01T10:00:10+00:00"


def test_a_running_trial_gets_its_metrics_from_the_db_manager(platform, exp):
    from experiments.backends.cluster import ClusterBackend

    names = play_katib(platform, exp, [Outcome("dddddddd", "2e-4", "32", condition="Running")],
                       condition="Running")  # fmt: skip
    logs = {names[0]: [("2026-12-01T10:00:10Z", "eval_accuracy", "0.61")]}
    with db_manager(logs) as (address, _):
        status = ClusterBackend(namespace=NS, db_manager_address=address).get("quickstart").status()
    assert status.condition == "Running" and status.trials[0].condition == "Running"
    assert status.trials[0].metric("eval_accuracy").latest == "0.61"


def test_an_unreachable_db_manager_names_the_port_forward(platform, exp):
    from experiments.backends.cluster import ClusterBackend, ClusterUnreachableError
    from tests.k8s_standin import free_port

    play_katib(platform, exp, OUTCOMES[:1])
    backend = ClusterBackend(namespace=NS, db_manager_address=f"127.0.0.1:{free_port()}")
    with pytest.raises(
        ClusterUnreachableError, match="kubectl -n kubeflow port-forward svc/katib-db-manager"
    ):
        backend.get("quickstart").trials()


def test_list_reads_the_namespaces_experiments(backend, platform, exp):
    play_katib(platform, exp, OUTCOMES)
    (row,) = backend.list()
    assert (row.name, row.condition, row.trials, row.succeeded, row.backend) == (
        "quickstart", "Succeeded", 3, 2, "cluster")  # fmt: skip
    assert row.extra == {"namespace": NS}
    assert platform.calls("GET", f"/namespaces/{NS}/experiments")


def test_delete_sends_delete_and_then_get_is_not_found(backend, platform, exp):
    play_katib(platform, exp, OUTCOMES[:1])
    backend.delete("quickstart")
    (call,) = platform.calls("DELETE")
    assert call.path == f"/apis/kubeflow.org/v1beta1/namespaces/{NS}/experiments/quickstart"
    with pytest.raises(NotFoundError, match="not found in namespace kubeflow-user"):
        backend.get("quickstart")


def test_resume_patches_only_the_budget_under_katibs_rules(backend, platform, exp):
    import dataclasses

    from experiments.spec import to_dict

    # resumePolicy Never (the quickstart's default): Katib refuses, nothing is patched.
    play_katib(platform, exp, OUTCOMES)
    with pytest.raises(ResumeRefusedError, match="resumePolicy is Never"):
        backend.resume("quickstart", max_trial_count=8)
    assert not platform.calls("PATCH")

    long_running = dataclasses.replace(exp, resume_policy="LongRunning")
    platform.update(EXP_API, "experiments", "quickstart", NS,
                    lambda obj: obj.__setitem__("spec", to_dict(long_running)["spec"]))  # fmt: skip
    with pytest.raises(UsageError, match="pass a larger count"):
        backend.resume("quickstart", max_trial_count=5)
    handle = backend.resume("quickstart", max_trial_count=8, parallel_trial_count=2)
    (patch,) = platform.calls("PATCH")
    assert patch.path == f"/apis/kubeflow.org/v1beta1/namespaces/{NS}/experiments/quickstart"
    assert patch.content_type == "application/merge-patch+json"
    assert patch.body == {"spec": {"maxTrialCount": 8, "parallelTrialCount": 2}}
    stored = platform.get(EXP_API, "experiments", "quickstart", NS)
    assert (
        stored["spec"]["maxTrialCount"] == 8
        and stored["spec"]["parameters"] == to_dict(exp)["spec"]["parameters"]
    )
    assert "updated (maxTrialCount=8, parallelTrialCount=2)" in handle.detach()


def test_resume_of_a_failed_experiment_is_refused(backend, platform, exp):
    play_katib(platform, exp, OUTCOMES, condition="Failed", reason="ExperimentFailed")
    with pytest.raises(
        ResumeRefusedError, match="Katib resumes only an experiment that reached maxTrialCount"
    ):
        backend.resume("quickstart", max_trial_count=9)


def test_logs_are_text_lines_per_replica_from_the_metrics_collector(backend, platform, exp):
    names = play_katib(platform, exp, OUTCOMES[:1])
    logs = backend.logs("quickstart", names[0])
    assert set(logs) == {"master-0", "worker-0"}
    assert logs["master-0"][1] == "2026-12-01T10:00:10Z epoch=2.0 eval_loss=1.2 eval_accuracy=0.55"
    assert logs["worker-0"] == [f"worker of {names[0]}: rank 1 prints no metrics"]
    master_log = [r for r in platform.requests if r.path.endswith(f"{names[0]}-master-0/log")]
    assert master_log[0].query == {"container": "metrics-logger-and-collector"}
    (pods,) = platform.calls("GET", f"/namespaces/{NS}/pods")[:1]
    assert pods.query["labelSelector"].startswith(f"katib.kubeflow.org/trial={names[0]}")


def test_logs_of_a_trial_whose_pods_are_gone_say_why(backend, platform, exp):
    names = play_katib(platform, exp, OUTCOMES[:1])
    for kind in ("master", "worker"):
        platform.update(
            "v1", "pods", f"{names[0]}-{kind}-0", NS, lambda pod: pod["metadata"]["labels"].clear()
        )
    with pytest.raises(NotFoundError, match="retain is true"):
        backend.logs("quickstart", names[0])


def test_wait_polls_until_katib_ends_the_experiment(backend, platform, exp):
    play_katib(platform, exp, [Outcome("dddddddd", "2e-4", "32", condition="Running")], condition="Running")
    seen = []

    def progress(status):
        seen.append(status.condition)
        if len(seen) == 2:  # Katib's controller finishes it meanwhile
            play_katib(platform, exp, [], condition="Succeeded")

    final = backend.get("quickstart").wait(progress=progress, timeout=30)
    assert final.condition == "Succeeded" and seen[:2] == ["Running", "Running"] and seen[-1] == "Succeeded"


def test_the_sdk_calls_this_backend_avoids_still_fail_with_this_kubernetes_client(backend, platform, exp):
    """kubeflow-katib 0.19's list_trials / get_experiment / edit_experiment_budget fail against kubernetes 37
    (see experiments/backends/cluster/_backend.py). When an SDK release fixes them this test fails: then the
    backend can call them instead of KatibClient.custom_api."""
    names = play_katib(platform, exp, OUTCOMES[:1])
    client = backend.client
    with pytest.raises(RuntimeError, match="Failed to list Katib Trials"):
        client.list_trials("quickstart", namespace=NS)
    with pytest.raises(RuntimeError, match="Failed to get Katib Experiment"):
        client.get_experiment("quickstart", namespace=NS)
    with pytest.raises(RuntimeError):
        client.edit_experiment_budget("quickstart", namespace=NS, max_trial_count=9)
    assert names and not platform.calls("PATCH")


def test_watch_trials_and_logs_through_the_cli(platform, exp, katib):
    names = play_katib(platform, exp, OUTCOMES)
    flags = ("--backend", "cluster", "--namespace", NS)
    code, out, err = katib("watch", "quickstart", *flags)
    assert code == 0, err
    assert "Succeeded" in out and names[1] in out  # the summary names the best trial
    code, out, err = katib("trials", "quickstart", *flags, "-o", "json")
    assert code == 0 and [i["metadata"]["name"] for i in json.loads(out)["items"]] == names
    code, out, err = katib("logs", "quickstart", names[0], *flags, "--tail", "1")
    assert (code, out) == (0, "2026-12-01T10:00:10Z epoch=2.0 eval_loss=1.2 eval_accuracy=0.55\n")
    code, out, err = katib("logs", "quickstart", names[0], *flags, "--replica", "worker-0")
    assert code == 0 and "rank 1 prints no metrics" in out
    code, _, err = katib("logs", "quickstart", names[0], *flags, "--replica", "worker-3")
    assert code == 1 and "--replica must be one of ['master-0', 'worker-0']" in err
