"""render_trial: Katib's substitution, and the helpers the local backend uses."""

from __future__ import annotations

import pytest

from experiments.spec import (
    SpecError,
    load_experiment,
    nproc_per_node,
    parse_experiment,
    primary_container,
    render_trial,
    replica_specs,
)
from tests.experiments.spec.conftest import FEATURES, QUICKSTART


def test_quickstart_trial_is_a_pytorchjob_with_values_substituted():
    exp = load_experiment(QUICKSTART)
    job = render_trial(exp, {"lr": "2e-05", "batch_size": "32"}, "quickstart-abcdefgh", namespace="team")
    assert job["kind"] == "PyTorchJob"
    assert job["metadata"] == {"name": "quickstart-abcdefgh", "namespace": "team"}
    argv = primary_container(job, exp)["command"]
    assert "--learning_rate=2e-05" in argv and "--global_batch_size=32" in argv
    assert "--output_dir=runs/quickstart/quickstart-abcdefgh" in argv
    assert "${" not in str(job)
    replicas = replica_specs(job)
    assert {name: count for name, (count, _) in replicas.items()} == {"Master": 1, "Worker": 1}
    assert nproc_per_node(job) == "1"
    # The template itself is untouched.
    assert "${trialParameters.learningRate}" in str(exp.trial_template.trial_spec)


def test_trial_metadata_references_as_katib_resolves_them():
    exp = load_experiment(FEATURES / "template" / "metadata-substitution.yaml")
    job = render_trial(exp, {"rate": "0.02"}, "feat-trial-metadata-x1", namespace="research")
    env = {e["name"]: e["value"] for e in primary_container(job, exp)["env"]}
    assert env == {
        "PROBE_JOB": "feat-trial-metadata-x1",
        "PROBE_NAMESPACE": "research",
        "PROBE_KIND": "Job",
        "PROBE_API_VERSION": "batch/v1",
        "PROBE_TEAM": "search",
        "PROBE_OWNER": "suite-maintainers",
    }
    assert replica_specs(job)["Job"][0] == 1


def test_missing_assignment_names_the_parameter_and_the_fix():
    exp = load_experiment(QUICKSTART)
    with pytest.raises(SpecError, match=r"batch_size.*--assign batch_size=<value>"):
        render_trial(exp, {"lr": "2e-5"}, "t")


def test_unknown_assignment_is_rejected_not_ignored():
    exp = load_experiment(QUICKSTART)
    with pytest.raises(SpecError, match=r"unknown parameter.*learning_rate"):
        render_trial(exp, {"lr": "2e-5", "batch_size": "32", "learning_rate": "1"}, "t")


def test_values_with_quotes_stay_valid_json():
    exp = load_experiment(QUICKSTART)
    job = render_trial(exp, {"lr": 'a"b', "batch_size": "32"}, "t")
    assert '--learning_rate=a"b' in primary_container(job, exp)["command"]


def test_configmap_template_cannot_be_rendered_locally():
    exp = load_experiment(FEATURES / "template" / "configmap-source.yaml")
    with pytest.raises(SpecError, match="ConfigMap"):
        render_trial(exp, {"rate": "0.01", "depth": "2", "act": "relu"}, "t")


def test_primary_container_follows_primary_pod_labels():
    exp = load_experiment(FEATURES / "jobs" / "tfjob.yaml", backend="cluster")
    job = render_trial(exp, {"rate": "0.01", "batch": "32"}, "t")
    assert primary_container(job, exp)["name"] == "tf-probe"
    assert replica_specs(job)["Worker"][0] == 2


def test_primary_container_missing_is_a_clear_error(quickstart):
    quickstart["spec"]["trialTemplate"]["primaryContainerName"] = "trainer"
    exp = parse_experiment(quickstart)
    job = render_trial(exp, {"lr": "1e-5", "batch_size": "16"}, "t")
    with pytest.raises(SpecError, match="no container named 'trainer'"):
        primary_container(job, exp)
