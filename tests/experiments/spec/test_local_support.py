"""One rule in one place: over every shipped experiment x search space, every Katib feature fixture and the
faults that once slipped between the two layers, `validate` (for the local backend) says valid exactly when
the local backend builds what it runs an experiment with (suggester, early stopping, metrics collector),
without running a trial. Where it refuses, it says why and names the cluster backend when Katib would run it."""

from __future__ import annotations

import copy
import itertools

import pytest

from experiments.backends.local._medianstop import make_early_stopping
from experiments.backends.local._suggest import Suggester
from experiments.backends.local._trial import check_supported
from experiments.collector import LineCollector, metric_names
from experiments.errors import KatibSuiteError
from experiments.spec import (
    InvalidExperimentError,
    apply_defaults,
    compose,
    load_yaml,
    parse_experiment,
    validate_experiment,
)
from tests.experiments.spec.conftest import FEATURES, QUICKSTART, REPO

SHIPPED = sorted((REPO / "experiments").glob("*.yaml"))
SEARCH_SPACES = sorted((REPO / "search_spaces").glob("*.yaml"))
FIXTURES = sorted(FEATURES.rglob("*.yaml"))
_QS = load_yaml(QUICKSTART.read_text())


def _with(path: tuple, value) -> dict:
    doc = copy.deepcopy(_QS)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def _algorithm(name: str, **settings) -> dict:
    return _with(
        ("spec", "algorithm"),
        {"algorithmName": name, "algorithmSettings": [{"name": k, "value": v} for k, v in settings.items()]},
    )


_EPOCHS = {"name": "epochs", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "9"}}


def _hyperband(**settings) -> dict:
    doc = _algorithm("hyperband", resource_name="epochs", r_l="9", **settings)
    doc["spec"]["parameters"].append(_EPOCHS)
    doc["spec"]["parallelTrialCount"] = 9
    doc["spec"]["maxTrialCount"] = 30
    return doc


# The faults of issue 7 (each disagreed between validate and the backend before the one rule), and more.
MUTANTS = {
    "sobol-random-state": _algorithm("sobol", random_state="3"),
    "hyperband-random-state": _hyperband(random_state="3"),
    "hyperband-b_l": _hyperband(b_l="27"),
    "random-state-beyond-numpy": _algorithm("tpe", random_state=str(2**32)),
    "random-state-negative": _algorithm("random", random_state="-1"),
    "look-ahead": _with(
        ("spec", "metricsCollectorSpec", "source"), {"filter": {"metricsFormat": [r"(\w+)(?==)=([\d.]+)"]}}
    ),
    "go-named-groups": _with(
        ("spec", "metricsCollectorSpec", "source"),
        {"filter": {"metricsFormat": [r"(?<name>[[:alpha:]_]+)=(?P<value>[\d.]+)\z"]}},
    ),
    "bayes-rf": _algorithm("bayesianoptimization", base_estimator="RF"),
    "bayes-gp": _algorithm("bayesianoptimization", base_estimator="GP", acq_func="EI"),
    "cmaes-sigma-zero": _algorithm("cmaes", sigma="0"),
    "multivariate-tpe-no-candidates": _algorithm("multivariate-tpe", n_ei_candidates="0"),
    "medianstop-typo": _with(
        ("spec", "earlyStopping", "algorithmSettings"), [{"name": "start_steps", "value": "3"}]
    ),
    "prometheus-collector": _with(
        ("spec", "metricsCollectorSpec"),
        {
            "collector": {"kind": "PrometheusMetric"},
            "source": {"httpGet": {"port": 8080, "path": "/metrics"}},
        },
    ),
}
del MUTANTS["prometheus-collector"]["spec"]["earlyStopping"]  # Katib-valid: medianstop needs StdOut or File


def _corpus():
    for experiment, space in itertools.product(SHIPPED, [None, *SEARCH_SPACES]):
        yield f"{experiment.name}+{space.name if space else '-'}", load_yaml(experiment.read_text()), space
    for path in FIXTURES:
        yield str(path.relative_to(FEATURES)), load_yaml(path.read_text()), None
    for name, doc in MUTANTS.items():
        yield name, doc, None


CORPUS = list(_corpus())
# What these builders consume; a problem elsewhere (the trial template, the counts) is not theirs to refuse.
_AREAS = (
    "spec.algorithm",
    "spec.earlyStopping",
    "spec.metricsCollectorSpec",
    "spec.trialTemplate.trialSpec.kind",
)


def _builds(exp) -> str | None:
    """None when the local backend builds its suggester, early stopping and collector; else its message."""
    try:
        check_supported(exp)
        Suggester(exp)
        if exp.early_stopping is not None:
            make_early_stopping(exp.early_stopping, exp.objective)
        LineCollector(exp.metrics_collector, metric_names(exp.objective))
    except KatibSuiteError as error:  # anything else is a traceback: the test fails with it
        return str(error)
    return None


def _theirs(problem) -> bool:
    return (
        problem.path.startswith(_AREAS)
        or ".feasibleSpace" in problem.path
        or (problem.path == "spec.parallelTrialCount" and "hyperband" in problem.message)
        or (problem.path == "spec.maxTrialCount" and "grid" in problem.message)
    )


def test_the_corpus_is_all_there():
    assert len(CORPUS) >= len(SHIPPED) * (1 + len(SEARCH_SPACES)) + 36 + len(MUTANTS)


@pytest.mark.parametrize(("name", "doc", "space"), CORPUS, ids=[c[0] for c in CORPUS])
def test_validate_for_local_agrees_with_what_the_local_backend_builds(name, doc, space):
    try:
        exp = parse_experiment(doc, source=name)
    except InvalidExperimentError:
        pytest.fail(f"{name} is in the corpus but does not parse; every corpus entry must")
    if space is not None:
        exp = compose(exp, space)
    exp = apply_defaults(exp)
    problems = [p for p in validate_experiment(exp, backend="local") if _theirs(p)]
    refused = _builds(exp)
    if problems:
        assert refused is not None, f"validate reports {problems} but the local backend builds it"
        assert any(p.message in refused or p.message.split(";")[0] in refused for p in problems), (
            f"the backend refuses with its own words: {refused!r}, validate: {problems}"
        )
    else:
        assert refused is None, f"validate says valid for local, but the backend refuses: {refused}"


@pytest.mark.parametrize("name", ["bayes-rf", "prometheus-collector"])
def test_katib_valid_but_local_only_problems_name_the_cluster_backend(name):
    exp = apply_defaults(parse_experiment(MUTANTS[name]))
    assert [p for p in validate_experiment(exp, backend="cluster") if _theirs(p)] == []
    local = [p for p in validate_experiment(exp, backend="local") if _theirs(p)]
    assert local and all("--backend cluster" in p.message for p in local)


def test_every_fixture_katib_runs_is_valid_for_the_cluster_backend():
    # pbt, enas, darts and the cluster-only collectors are Katib-valid: they fail only for the local backend.
    for path in FIXTURES:
        if "rejected" in path.parts or "without-conditions" in path.name:
            continue
        exp = apply_defaults(parse_experiment(load_yaml(path.read_text())))
        assert validate_experiment(exp, backend="cluster") == [], path
