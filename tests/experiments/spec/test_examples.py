"""Katib's own examples, the shipped experiments and search spaces: valid, and round-trip without loss."""

from __future__ import annotations

import itertools

import pytest
import yaml

from experiments.spec import (
    InvalidExperimentError,
    compose,
    from_sdk,
    load_experiment,
    parse_experiment,
    to_dict,
    to_sdk,
    to_yaml,
)
from tests.experiments.spec.conftest import EXAMPLES, REPO

VENDORED = sorted(p for p in EXAMPLES.rglob("*.yaml"))
# Katib's own webhook rejects this one: maxFailedTrialCount 3 > maxTrialCount 2 (validator.go).
KATIB_REJECTS = {"hp-tuning/simple-pbt.yaml": "spec.maxFailedTrialCount"}
SHIPPED = sorted((REPO / "experiments").glob("*.yaml"))
SEARCH_SPACES = sorted((REPO / "search_spaces").glob("*.yaml"))


def _name(path) -> str:
    return str(path.relative_to(EXAMPLES))


def test_vendored_examples_are_there():
    assert len(VENDORED) >= 19


@pytest.mark.parametrize("path", VENDORED, ids=_name)
def test_katib_example_validates_as_katib_does(path):
    if _name(path) in KATIB_REJECTS:
        with pytest.raises(InvalidExperimentError) as info:
            load_experiment(path)
        assert [p.path for p in info.value.problems] == [KATIB_REJECTS[_name(path)]]
    else:
        exp = load_experiment(path)
        assert exp.name == yaml.safe_load(path.read_text())["metadata"]["name"]


@pytest.mark.parametrize("path", VENDORED + SHIPPED, ids=lambda p: p.name)
def test_yaml_round_trips_without_loss(path):
    original = yaml.safe_load(path.read_text())
    exp = parse_experiment(original, source=str(path))
    assert to_dict(exp) == original
    assert parse_experiment(yaml.safe_load(to_yaml(exp))) == exp


@pytest.mark.parametrize("path", VENDORED + SHIPPED, ids=lambda p: p.name)
def test_sdk_round_trip(path):
    exp = parse_experiment(yaml.safe_load(path.read_text()))
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
        spec = yaml.safe_load(space.read_text())
        expected = [p["name"] for p in spec["parameters"]]
        original = parse_experiment(yaml.safe_load(experiment.read_text()))
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
