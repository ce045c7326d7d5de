"""Every way the cluster can say no, through the CLI: one clear message with the fix, a non-zero exit, no
traceback, and nothing created when a pre-flight check fails."""

from __future__ import annotations

import time

import pytest

from tests.experiments.backends.cluster.katib_world import (
    EXP_API,
    NS,
    REPO_ROOT,
    Outcome,
    cluster_experiment,
    experiment_file,
    install_platform,
    play_katib,
)
from tests.k8s_standin import silent_api_server, unreachable_kubeconfig

CLUSTER = ("--backend", "cluster", "--namespace", NS)


def clean(err: str) -> None:
    assert err.startswith("error: ") and "Traceback" not in err


def test_404_names_the_namespace_and_how_to_list(platform, katib):
    for verb in (
        ("status", "nope"),
        ("trials", "nope"),
        ("delete", "nope", "--yes"),
        ("logs", "nope", "nope-abcdefgh"),
    ):
        code, out, err = katib(*verb, *CLUSTER)
        assert code == 1 and out == "", verb
        clean(err)
        assert "not found in namespace kubeflow-user" in err
        assert "katib experiment list --backend cluster --namespace kubeflow-user" in err


def test_409_on_submit_says_how_to_continue(platform, katib, tmp_path):
    path = experiment_file(tmp_path)
    assert katib("submit", str(path), *CLUSTER)[0] == 0
    code, _, err = katib("submit", str(path), *CLUSTER)
    assert code == 1
    clean(err)
    assert "already exists in namespace kubeflow-user" in err and "--name" in err and "resume" in err
    assert len(platform.calls("POST", "/experiments")) == 2  # the second was refused by the server


@pytest.mark.parametrize("verb", ["submit", "status", "list", "resume", "delete"])
def test_403_names_the_rbac_to_ask_for(platform, katib, tmp_path, verb):
    play_katib(platform, cluster_experiment(tmp_path, name="other"), [Outcome("aaaaaaaa", "1e-4", "16")])
    platform.fail(
        403, path=r"/experiments", message='experiments.kubeflow.org is forbidden: User "dev" cannot'
    )
    argv = {
        "submit": ("submit", str(experiment_file(tmp_path))),
        "status": ("status", "other"),
        "list": ("list",),
        "resume": ("resume", "other", "--max-trials", "9"),
        "delete": ("delete", "other", "--yes"),
    }[verb]
    code, _, err = katib(*argv, *CLUSTER)
    assert code == 1
    clean(err)
    assert "403 Forbidden" in err and 'User "dev" cannot' in err
    assert "kubectl auth can-i" in err and "-n kubeflow-user" in err


def test_unreachable_api_server(katib, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(unreachable_kubeconfig(tmp_path / "kc")))
    for argv in (("submit", str(experiment_file(tmp_path))), ("status", "quickstart"), ("list",)):
        code, _, err = katib(*argv, *CLUSTER)
        assert code == 1, argv
        clean(err)
        assert "cannot reach the Kubernetes API server at http://127.0.0.1:" in err
        assert (
            "connection refused" in err and "kubectl cluster-info" in err and "(context unreachable)" in err
        )


@pytest.mark.parametrize("argv", [("status", "quickstart"), ("list",), ("delete", "quickstart", "--yes")])
def test_a_server_that_never_answers_times_out_with_the_flag_to_raise(katib, tmp_path, monkeypatch, argv):
    with silent_api_server(tmp_path / "kc") as kubeconfig:
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        started = time.monotonic()
        code, _, err = katib(*argv, *CLUSTER, "--request-timeout", "0.5")
        elapsed = time.monotonic() - started
    assert code == 1, argv
    clean(err)
    assert "the Kubernetes API server at http://127.0.0.1:" in err and "(context silent)" in err
    assert "did not answer in time" in err and "raise --request-timeout SECONDS" in err
    assert elapsed < 10  # not the 30 s default, and never forever


def test_a_silent_server_costs_at_most_two_tries_of_the_deadline(tmp_path, monkeypatch):
    from experiments.backends.cluster import ClusterBackend
    from experiments.backends.cluster._errors import ClusterUnreachableError

    with silent_api_server(tmp_path / "kc") as kubeconfig:
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        backend = ClusterBackend(namespace=NS, request_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(ClusterUnreachableError, match="did not answer in time"):
            backend.list()  # one GET
        elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 2.5  # tried twice (urllib3's default would try 4 times), each bounded


def test_every_client_request_has_the_default_deadline(tmp_path, monkeypatch):
    from experiments._kube import REQUEST_TIMEOUT
    from experiments.backends.cluster import ClusterBackend

    monkeypatch.setenv("KUBECONFIG", str(unreachable_kubeconfig(tmp_path / "kc")))
    client = ClusterBackend().client
    for api in (client.custom_api, client.core_api):  # what the SDK's own calls go through too
        assert api.api_client.rest_client._katib_suite_timeout == REQUEST_TIMEOUT == 30.0


@pytest.mark.parametrize(("value", "message"), [("0", "got: 0"), ("-3", "got: -3"), ("soon", "got: soon")])
def test_a_bad_request_timeout_is_a_usage_error(katib, capsys, value, message):
    with pytest.raises(SystemExit) as exit_:  # argparse's own exit
        katib("status", "quickstart", *CLUSTER, "--request-timeout", value)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"--request-timeout: must be a number of seconds > 0; {message}" in err


def test_request_timeout_goes_with_the_cluster_backend(katib):
    code, _, err = katib("list", "--request-timeout", "5")
    assert code == 2 and "--request-timeout go(es) with --backend cluster" in err


def test_no_kubeconfig(katib, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    code, _, err = katib("status", "quickstart", "--backend", "cluster")
    assert code == 1
    clean(err)
    assert (
        f"no kubeconfig found (looked for {tmp_path / 'absent'})" in err and "kind export kubeconfig" in err
    )


def test_unknown_context(platform, katib):
    code, _, err = katib("list", "--backend", "cluster", "--context", "prod")
    assert code == 1
    clean(err)
    assert "--context prod is not in the kubeconfig (contexts: standin)" in err


def test_storage_is_refused_for_the_cluster(platform, katib):
    code, _, err = katib("list", "--backend", "cluster", "--storage", "sqlite:///x.db")
    assert code == 2 and "--storage is the local backend's" in err


def test_a_500_is_reported_with_where_to_look(platform, katib):
    platform.fail(
        500, method="GET", path=r"/experiments/quickstart$", message="etcdserver: request timed out"
    )
    code, _, err = katib("status", "quickstart", *CLUSTER)
    assert code == 1
    clean(err)
    assert "answered 500 (etcdserver: request timed out)" in err and "get events" in err


# ---------------------------------------------------------------- pre-flight


def preflight_error(katib, tmp_path, platform, **file_kwargs) -> str:
    code, _, err = katib("submit", str(experiment_file(tmp_path, **file_kwargs)), *CLUSTER)
    assert code == 1
    clean(err)
    assert (
        "the cluster is not ready for experiment kubeflow-user/quickstart" in err
        and "nothing was created" in err
    )
    assert not platform.calls("POST")
    return err


def test_preflight_missing_katib_and_training_operator(k8s_standin, kubeconfig, katib, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    install_platform(k8s_standin, crds=False)
    err = preflight_error(katib, tmp_path, k8s_standin)
    assert "Katib is not installed" in err and "experiments.kubeflow.org/v1beta1" in err
    assert "the Training Operator is not installed" in err and "pytorchjobs.kubeflow.org/v1" in err
    assert "bash infra/install.sh" in err


def test_preflight_unlabelled_namespace(k8s_standin, kubeconfig, katib, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    install_platform(k8s_standin, labelled=False)
    err = preflight_error(katib, tmp_path, k8s_standin)
    assert "lacks the label katib.kubeflow.org/metrics-collector-injection=enabled" in err
    assert (
        "kubectl label namespace kubeflow-user katib.kubeflow.org/metrics-collector-injection=enabled" in err
    )
    assert "MetricsUnavailable" in err


def test_preflight_missing_namespace_service_account_and_secret(k8s_standin, kubeconfig, katib, tmp_path,
                                                                 monkeypatch):  # fmt: skip
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    k8s_standin.install_crds("katib", "training")
    err = preflight_error(katib, tmp_path, k8s_standin)
    assert "namespace kubeflow-user does not exist" in err
    assert "ServiceAccount 'katib-suite-trainer'" in err and "Secret 'katib-suite-s3'" in err
    assert "(3 problem(s))" in err  # every problem at once


def test_preflight_placeholder_image(platform, katib, tmp_path):
    err = preflight_error(katib, tmp_path, platform, image="ghcr.io/katib-suite/trainer:0.1.0")
    assert "run the placeholder image ghcr.io/katib-suite/trainer:0.1.0" in err
    assert "KATIB_SUITE_IMAGE=REPO:TAG bash infra/render-experiment.sh" in err


def test_preflight_passes_on_a_ready_cluster_and_skips_what_it_may_not_read(
    platform, katib, tmp_path, caplog
):
    platform.fail(403, method="GET", path=rf"^/api/v1/namespaces/{NS}$")
    code, _, err = katib("submit", str(experiment_file(tmp_path)), *CLUSTER)
    assert code == 0, err
    assert platform.get(EXP_API, "experiments", "quickstart", NS) is not None
    assert "could not check that namespace kubeflow-user carries" in caplog.text


# ---------------------------------------------------------------- where an experiment lives


def test_backend_defaults_to_where_the_experiment_was_submitted(platform, katib, tmp_path, monkeypatch):
    # The kube context's namespace is "default"; the experiment went to its metadata.namespace.
    assert katib("submit", str(experiment_file(tmp_path)), "--backend", "cluster")[0] == 0
    play_katib(platform, cluster_experiment(tmp_path), [Outcome("aaaaaaaa", "1e-4", "16")])
    code, out, err = katib("status", "quickstart")  # no --backend, no --namespace
    assert code == 0, err
    assert "Experiment quickstart (cluster)" in out and "Succeeded" in out
    assert katib("delete", "quickstart", "--yes")[0] == 0
    assert platform.calls("DELETE", f"/namespaces/{NS}/experiments/quickstart")
    code, _, err = katib("status", "quickstart")  # forgotten: the local backend answers (not found)
    assert code == 1 and "cluster" not in err.split(";")[0]


def test_cluster_flags_without_the_cluster_backend_are_refused(katib, tmp_path):
    code, _, err = katib("list", "--namespace", NS)
    assert code == 2 and "--namespace go(es) with --backend cluster" in err


def test_preflight_trial_template_in_a_missing_configmap(platform, katib):
    fixture = (
        REPO_ROOT / "tests" / "experiments" / "spec" / "katib_features" / "template" / "configmap-source.yaml"
    )
    code, _, err = katib("submit", str(fixture), *CLUSTER)
    assert code == 1
    clean(err)
    assert "ConfigMap katib-suite/probe-trial-templates, which does not exist" in err
    assert not platform.calls("POST")
    platform.add("v1", "configmaps", {"metadata": {"name": "probe-trial-templates"}, "data": {"other.yaml": ""}},
                 namespace="katib-suite")  # fmt: skip
    code, _, err = katib("submit", str(fixture), *CLUSTER)
    assert code == 1 and "has no key 'probe-job.yaml' (its keys: ['other.yaml']); fix templatePath" in err
