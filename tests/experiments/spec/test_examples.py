"""Our Katib feature fixtures, the shipped experiments and search spaces: valid, and round-trip without loss."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from experiments.spec import (
    InvalidExperimentError,
    MetricsCollector,
    apply_defaults,
    compose,
    from_sdk,
    load_experiment,
    load_yaml,
    parse_experiment,
    to_dict,
    to_sdk,
    to_yaml,
    validate_experiment,
)
from tests.experiments.spec.conftest import FEATURES, REPO

FIXTURES = sorted(FEATURES.rglob("*.yaml"))
# Katib's webhook (validator.go) rejects these, and so do we, with exactly this problem path:
KATIB_REJECTS = {
    "rejected/max-failed-over-max-trials.yaml": "spec.maxFailedTrialCount",
    # MXJob left the Training Operator (v1.8) and Katib's KubeflowJobKinds, so the mutating webhook
    # no longer defaults successCondition/failureCondition for it and the validator requires them.
    "jobs/mxjob-without-conditions.yaml": "spec.trialTemplate",
}
SHIPPED = sorted((REPO / "experiments").glob("*.yaml"))
SEARCH_SPACES = sorted((REPO / "search_spaces").glob("*.yaml"))


def _name(path) -> str:
    return str(path.relative_to(FEATURES))


def test_feature_fixtures_are_there():
    # A lost or renamed fixture directory would otherwise parametrize to nothing and pass.
    assert len(FIXTURES) >= 36
    assert set(KATIB_REJECTS) <= {_name(p) for p in FIXTURES}


@pytest.mark.parametrize("path", FIXTURES, ids=_name)
def test_feature_fixture_validates_as_katib_does(path):
    # Katib's rules alone (backend="cluster"); what the local backend cannot run is test_local_support's.
    if _name(path) in KATIB_REJECTS:
        with pytest.raises(InvalidExperimentError) as info:
            load_experiment(path, backend="cluster")
        assert [p.path for p in info.value.problems] == [KATIB_REJECTS[_name(path)]]
    else:
        exp = load_experiment(path, backend="cluster")
        assert exp.name == load_yaml(path.read_text())["metadata"]["name"]


@pytest.mark.parametrize("path", FIXTURES + SHIPPED, ids=lambda p: p.name)
def test_yaml_round_trips_without_loss(path):
    original = load_yaml(path.read_text())
    exp = parse_experiment(original, source=str(path))
    assert to_dict(exp) == original
    assert parse_experiment(load_yaml(to_yaml(exp))) == exp


@pytest.mark.parametrize("path", FIXTURES + SHIPPED, ids=lambda p: p.name)
def test_sdk_round_trip(path):
    exp = parse_experiment(load_yaml(path.read_text()))
    sdk = to_sdk(exp)
    assert type(sdk).__name__ == "V1beta1Experiment"
    assert sdk.spec.objective.objective_metric_name == exp.objective.objective_metric_name
    assert from_sdk(sdk) == exp


@pytest.mark.parametrize(
    ("experiment", "space"),
    list(itertools.product(SHIPPED, [None, *SEARCH_SPACES])),
    ids=lambda p: getattr(p, "name", "no-search-space"),
)
def test_every_shipped_experiment_validates_with_every_search_space(experiment, space):
    exp = load_experiment(experiment, search_space=space)
    if space is not None:
        spec = load_yaml(space.read_text())
        expected = [p["name"] for p in spec["parameters"]]
        original = parse_experiment(load_yaml(experiment.read_text()))
        if original.algorithm.algorithm_name == "hyperband":  # its budget parameter is kept (see compose)
            expected.append(original.algorithm.settings["resource_name"])
        assert [p.name for p in exp.parameters] == expected
        if "algorithm" in spec:
            assert exp.algorithm.algorithm_name == spec["algorithm"]["algorithmName"]


def test_compose_replaces_parameters_and_algorithm_only(quickstart):
    base = parse_experiment(quickstart)
    composed = compose(base, REPO / "search_spaces" / "lr-batch-grid.yaml")
    assert composed.algorithm.algorithm_name == "grid"
    assert composed.parameter("lr").feasible_space.step == "1e-5"
    assert composed.trial_template == base.trial_template
    assert composed.max_trial_count == base.max_trial_count
    as_yaml = to_dict(composed)
    assert as_yaml["kind"] == "Experiment" and as_yaml["spec"]["algorithm"] == {"algorithmName": "grid"}


def test_compose_keeps_the_hyperband_budget_parameter():
    base = load_experiment(REPO / "experiments" / "quickstart-hyperband.yaml")
    composed = load_experiment(
        REPO / "experiments" / "quickstart-hyperband.yaml",
        search_space=REPO / "search_spaces" / "lr-batch.yaml",
    )
    assert [p.name for p in composed.parameters] == ["lr", "batch_size", "epochs"]
    assert composed.parameter("epochs") == base.parameter("epochs")
    assert composed.parameter("lr").feasible_space.max == "5e-5"  # the search space's range, not the file's
    assert composed.algorithm == base.algorithm


def test_shipped_cluster_experiment_is_what_the_brief_asks():
    exp = load_experiment(REPO / "experiments" / "roberta-large-yahoo.yaml")
    spec = exp.trial_template.trial_spec["spec"]["pytorchReplicaSpecs"]
    assert spec["Master"]["replicas"] == 1 and spec["Worker"]["replicas"] == 3
    for replica in spec.values():
        container = replica["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert container["envFrom"] == [{"secretRef": {"name": "katib-suite-s3"}}]
        assert replica["template"]["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
    assert exp.algorithm.algorithm_name == "tpe" and exp.early_stopping.algorithm_name == "medianstop"
    assert exp.metrics_collector.kind == "StdOut"


def test_trainjob_gets_katibs_trainer_v2_defaults():
    exp = load_experiment(FEATURES / "jobs" / "trainjob.yaml", backend="cluster")  # Katib runs it, not us
    tt = exp.trial_template
    assert tt.success_condition == 'status.conditions.#(type=="Complete")#|#(status=="True")#'
    assert tt.failure_condition == 'status.conditions.#(type=="Failed")#|#(status=="True")#'
    # The metrics sidecar goes into the JobSet's "node" pods, where the fixture's container runs.
    assert tt.primary_pod_labels == {"jobset.sigs.k8s.io/replicatedjob-name": "node"}


def test_mxjob_is_accepted_once_it_names_its_own_conditions():
    spec = load_yaml((FEATURES / "jobs" / "mxjob-without-conditions.yaml").read_text())
    spec["spec"]["trialTemplate"]["successCondition"] = (
        'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
    )
    spec["spec"]["trialTemplate"]["failureCondition"] = (
        'status.conditions.#(type=="Failed")#|#(status=="True")#'
    )
    exp = apply_defaults(parse_experiment(spec))
    assert validate_experiment(exp, backend="cluster") == []  # Katib runs MXJobs; the local backend does not
    assert exp.trial_template.primary_pod_labels == {"training.kubeflow.org/replica-type": "worker"}
    # The accepted fixture is that same spec under another name: the conditions alone decide.
    accepted = load_experiment(FEATURES / "jobs" / "mxjob-with-conditions.yaml", backend="cluster")
    assert accepted == dataclasses.replace(exp, name=accepted.name)


def test_collector_without_a_kind_stays_without_one():
    path = FEATURES / "collectors" / "stdout-no-kind.yaml"
    exp = load_experiment(path)
    assert exp.metrics_collector.kind == "StdOut"  # Katib's default
    assert exp.metrics_collector.metrics_format == (r"(\w+ \w+) = (\d+\.\d+)",)
    assert (
        "collector"
        not in to_dict(parse_experiment(load_yaml(path.read_text())))["spec"]["metricsCollectorSpec"]
    )
    # A collector built in code names its kind.
    built = dataclasses.replace(exp, metrics_collector=MetricsCollector(metrics_format=("(a)=(b)",)))
    assert to_dict(built)["spec"]["metricsCollectorSpec"]["collector"] == {"kind": "StdOut"}
