"""Table: one broken field per case, the problem Katib (or the trial run) would hit, found before anything runs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from experiments.spec import InvalidExperimentError, apply_defaults, parse_experiment, validate_experiment

SPEC = ("spec",)
TT = ("spec", "trialTemplate")
TS = ("spec", "trialTemplate", "trialSpec")
MASTER = (*TS, "spec", "pytorchReplicaSpecs", "Master")
MASTER_C = (*MASTER, "template", "spec", "containers", 0)


def at(d: dict, path: tuple):
    for key in path:
        d = d[key]
    return d


def set_(path: tuple, value) -> Callable[[dict], None]:
    def mutate(d: dict) -> None:
        at(d, path[:-1])[path[-1]] = value

    return mutate


def delete(path: tuple) -> Callable[[dict], None]:
    def mutate(d: dict) -> None:
        del at(d, path[:-1])[path[-1]]

    return mutate


def both(*mutations) -> Callable[[dict], None]:
    def mutate(d: dict) -> None:
        for m in mutations:
            m(d)

    return mutate


def _command_replace(old: str, new: str) -> Callable[[dict], None]:
    def mutate(d: dict) -> None:
        for replica in at(d, (*TS, "spec", "pytorchReplicaSpecs")).values():
            c = replica["template"]["spec"]["containers"][0]
            c["command"] = [arg.replace(old, new) for arg in c["command"]]

    return mutate


LR = ("spec", "parameters", 0)
BS = ("spec", "parameters", 1)
FS = (*LR, "feasibleSpace")

# (id, mutation, expected path, expected message fragment)
CASES = [
    ("name-uppercase", set_(("metadata", "name"), "QuickStart"), "metadata.name", "lower case"),
    ("name-missing", delete(("metadata", "name")), "metadata.name", "is required"),
    ("name-too-long", set_(("metadata", "name"), "a" * 60), "metadata.name", "63-character"),
    ("api-version", set_(("apiVersion",), "kubeflow.org/v1alpha3"), "apiVersion", "kubeflow.org/v1beta1"),
    ("kind", set_(("kind",), "Trial"), "kind", "Experiment"),
    ("unknown-spec-key", set_((*SPEC, "paralellTrialCount"), 2), "spec.paralellTrialCount", "unknown field"),
    ("max-trials-zero", set_((*SPEC, "maxTrialCount"), 0), "spec.maxTrialCount", "greater than 0"),
    ("parallel-zero", set_((*SPEC, "parallelTrialCount"), 0), "spec.parallelTrialCount", "greater than 0"),
    ("failed-negative", set_((*SPEC, "maxFailedTrialCount"), -1), "spec.maxFailedTrialCount", "less than 0"),
    (
        "failed-over-max",
        set_((*SPEC, "maxFailedTrialCount"), 9),
        "spec.maxFailedTrialCount",
        "<= spec.maxTrialCount",
    ),
    (
        "parallel-over-max",
        set_((*SPEC, "parallelTrialCount"), 9),
        "spec.parallelTrialCount",
        "<= spec.maxTrialCount",
    ),
    ("count-not-int", set_((*SPEC, "maxTrialCount"), "4"), "spec.maxTrialCount", "must be an integer"),
    (
        "objective-type",
        set_((*SPEC, "objective", "type"), "max"),
        "spec.objective.type",
        "minimize, maximize",
    ),
    (
        "objective-missing-metric",
        delete((*SPEC, "objective", "objectiveMetricName")),
        "spec.objective.objectiveMetricName",
        "is required",
    ),
    (
        "objective-repeated",
        set_((*SPEC, "objective", "additionalMetricNames"), ["eval_loss", "eval_accuracy"]),
        "spec.objective.additionalMetricNames",
        "must not contain the objective metric",
    ),
    (
        "strategy-value",
        set_((*SPEC, "objective", "metricStrategies", 0, "value"), "avg"),
        "spec.objective.metricStrategies[0].value",
        "min, max, latest",
    ),
    (
        "strategy-unknown-metric",
        set_((*SPEC, "objective", "metricStrategies", 0, "name"), "loss"),
        "spec.objective.metricStrategies[0].name",
        "additionalMetricNames",
    ),
    (
        "metric-not-printed",
        set_((*SPEC, "objective", "objectiveMetricName"), "accuracy"),
        "spec.objective.objectiveMetricName",
        "never printed",
    ),
    (
        "additional-not-printed",
        set_((*SPEC, "objective", "additionalMetricNames"), ["eval_loss", "val_f1"]),
        "spec.objective.additionalMetricNames[1]",
        "never printed",
    ),
    (
        "algorithm-unknown",
        set_((*SPEC, "algorithm", "algorithmName"), "tpee"),
        "spec.algorithm.algorithmName",
        "must be one of [random, tpe, grid",
    ),
    ("algorithm-missing", delete((*SPEC, "algorithm")), "spec.algorithm", "is required"),
    (
        "tpe-unknown-setting",
        set_((*SPEC, "algorithm", "algorithmSettings", 0, "name"), "seed"),
        "spec.algorithm.algorithmSettings[0].name",
        "unknown setting for algorithm tpe",
    ),
    (
        "tpe-gamma-range",
        set_((*SPEC, "algorithm", "algorithmSettings"), [{"name": "gamma", "value": "1.5"}]),
        "spec.algorithm.algorithmSettings[0].value",
        "open range (0, 1)",
    ),
    (
        "tpe-random-state-text",
        set_((*SPEC, "algorithm", "algorithmSettings", 0, "value"), "abc"),
        "spec.algorithm.algorithmSettings[0].value",
        "must be an integer",
    ),
    (
        "setting-not-string",
        set_((*SPEC, "algorithm", "algorithmSettings", 0, "value"), 42),
        "spec.algorithm.algorithmSettings[0].value",
        "quote it",
    ),
    (
        "cmaes-one-continuous",
        both(set_((*SPEC, "algorithm"), {"algorithmName": "cmaes"})),
        "spec.algorithm.algorithmName",
        "two or more double/int",
    ),
    (
        "cmaes-restart",
        set_(
            (*SPEC, "algorithm"),
            {"algorithmName": "cmaes", "algorithmSettings": [{"name": "restart_strategy", "value": "lpop"}]},
        ),
        "spec.algorithm.algorithmSettings[0].value",
        "none, ipop, bipop",
    ),
    (
        "grid-needs-step",
        set_((*SPEC, "algorithm"), {"algorithmName": "grid"}),
        "spec.parameters[0].feasibleSpace.step",
        "grid needs a step",
    ),
    (
        "grid-too-many-trials",
        both(
            set_((*SPEC, "algorithm"), {"algorithmName": "grid"}),
            set_((*FS, "min"), "1e-5"),
            set_((*FS, "max"), "5e-4"),
            set_((*FS, "step"), "2e-4"),
            set_((*FS, "distribution"), "uniform"),
            set_((*SPEC, "maxTrialCount"), 20),
        ),
        "spec.maxTrialCount",
        "grid has only 9 combinations",
    ),
    (
        "bayes-estimator",
        set_(
            (*SPEC, "algorithm"),
            {
                "algorithmName": "bayesianoptimization",
                "algorithmSettings": [{"name": "base_estimator", "value": "XGB"}],
            },
        ),
        "spec.algorithm.algorithmSettings[0].value",
        "GP, RF, ET, GBRT",
    ),
    (
        "hyperband-needs-settings",
        set_((*SPEC, "algorithm"), {"algorithmName": "hyperband"}),
        "spec.algorithm.algorithmSettings",
        "requires the setting 'r_l'",
    ),
    (
        "hyperband-resource-not-parameter",
        set_(
            (*SPEC, "algorithm"),
            {
                "algorithmName": "hyperband",
                "algorithmSettings": [
                    {"name": "r_l", "value": "1"},
                    {"name": "resource_name", "value": "epochs"},
                ],
            },
        ),
        "spec.algorithm.algorithmSettings",
        "resource_name must be one of the parameters",
    ),
    (
        "hyperband-parallel",
        set_(
            (*SPEC, "algorithm"),
            {
                "algorithmName": "hyperband",
                "algorithmSettings": [
                    {"name": "r_l", "value": "9"},
                    {"name": "resource_name", "value": "lr"},
                ],
            },
        ),
        "spec.parallelTrialCount",
        "needs parallelTrialCount >= 9",
    ),
    (
        "pbt-population",
        set_(
            (*SPEC, "algorithm"),
            {
                "algorithmName": "pbt",
                "algorithmSettings": [
                    {"name": "suggestion_trial_dir", "value": "/d"},
                    {"name": "n_population", "value": "3"},
                    {"name": "truncation_threshold", "value": "0.2"},
                ],
            },
        ),
        "spec.algorithm.algorithmSettings[1].value",
        "must be >= 5",
    ),
    (
        "pbt-needs-fromvolume",
        set_(
            (*SPEC, "algorithm"),
            {
                "algorithmName": "pbt",
                "algorithmSettings": [
                    {"name": "suggestion_trial_dir", "value": "/d"},
                    {"name": "n_population", "value": "5"},
                    {"name": "truncation_threshold", "value": "0.2"},
                ],
            },
        ),
        "spec.resumePolicy",
        "FromVolume",
    ),
    (
        "sobol-takes-only-random-state",
        set_(
            (*SPEC, "algorithm"),
            {"algorithmName": "sobol", "algorithmSettings": [{"name": "seed", "value": "1"}]},
        ),
        "spec.algorithm.algorithmSettings[0].name",
        "must be one of [random_state]",
    ),
    (
        "random-state-beyond-numpy",
        set_(
            (*SPEC, "algorithm"),
            {"algorithmName": "tpe", "algorithmSettings": [{"name": "random_state", "value": str(2**32)}]},
        ),
        "spec.algorithm.algorithmSettings[0].value",
        "random_state must be <= 4294967295",
    ),
    (
        "regex-look-ahead",
        set_(
            (*SPEC, "metricsCollectorSpec", "source"),
            {"filter": {"metricsFormat": [r"(eval_\w+)(?==)=([\d.]+)"]}},
        ),
        "spec.metricsCollectorSpec.source.filter.metricsFormat[0]",
        "invalid perl operator: (?=",
    ),
    (
        "regex-back-reference",
        set_(
            (*SPEC, "metricsCollectorSpec", "source"),
            {"filter": {"metricsFormat": [r"(\w+)=(\d)\1"]}},
        ),
        "spec.metricsCollectorSpec.source.filter.metricsFormat[0]",
        "not a valid regular expression",
    ),
    (
        "hyperband-resource-categorical",
        both(
            set_(
                (*SPEC, "parameters", 0),
                {"name": "lr", "parameterType": "categorical", "feasibleSpace": {"list": ["a", "b"]}},
            ),
            set_(
                (*SPEC, "algorithm"),
                {
                    "algorithmName": "hyperband",
                    "algorithmSettings": [
                        {"name": "r_l", "value": "1"},
                        {"name": "resource_name", "value": "lr"},
                    ],
                },
            ),
        ),
        "spec.algorithm.algorithmSettings",
        "must be int or double",
    ),
    (
        "medianstop-setting",
        set_((*SPEC, "earlyStopping", "algorithmSettings", 1, "value"), "0"),
        "spec.earlyStopping.algorithmSettings[1].value",
        "must be >= 1",
    ),
    (
        "earlystopping-unknown",
        set_((*SPEC, "earlyStopping", "algorithmName"), "asha"),
        "spec.earlyStopping.algorithmName",
        "must be one of [medianstop]",
    ),
    (
        "earlystopping-push",
        set_((*SPEC, "metricsCollectorSpec", "collector", "kind"), "Push"),
        "spec.metricsCollectorSpec.collector.kind",
        "early stopping",
    ),
    (
        "collector-none-renamed",
        set_((*SPEC, "metricsCollectorSpec", "collector", "kind"), "None"),
        "spec.metricsCollectorSpec.collector.kind",
        "renamed Push",
    ),
    (
        "collector-unknown",
        set_((*SPEC, "metricsCollectorSpec", "collector", "kind"), "Stdout"),
        "spec.metricsCollectorSpec.collector.kind",
        "must be one of",
    ),
    (
        "regex-one-group",
        set_((*SPEC, "metricsCollectorSpec", "source"), {"filter": {"metricsFormat": [r"(\w+)=\d+"]}}),
        "spec.metricsCollectorSpec.source.filter.metricsFormat[0]",
        "two top-level groups",
    ),
    (
        "regex-invalid",
        set_((*SPEC, "metricsCollectorSpec", "source"), {"filter": {"metricsFormat": ["(a)(b"]}}),
        "spec.metricsCollectorSpec.source.filter.metricsFormat[0]",
        "not a valid regular expression",
    ),
    (
        "file-relative-path",
        set_(
            (*SPEC, "metricsCollectorSpec"),
            {
                "collector": {"kind": "File"},
                "source": {"fileSystemPath": {"path": "metrics.log", "kind": "File"}},
            },
        ),
        "spec.metricsCollectorSpec.source.fileSystemPath.path",
        "absolute file path",
    ),
    (
        "file-json-with-filter",
        set_(
            (*SPEC, "metricsCollectorSpec"),
            {
                "collector": {"kind": "File"},
                "source": {
                    "fileSystemPath": {"path": "/m.json", "kind": "File", "format": "JSON"},
                    "filter": {"metricsFormat": ["(a)(b)"]},
                },
            },
        ),
        "spec.metricsCollectorSpec.source.filter",
        "JSON",
    ),
    (
        "resume-policy",
        set_((*SPEC, "resumePolicy"), "Always"),
        "spec.resumePolicy",
        "Never, LongRunning, FromVolume",
    ),
    (
        "param-type",
        set_((*LR, "parameterType"), "float"),
        "spec.parameters[0].parameterType",
        "double, int, discrete, categorical",
    ),
    (
        "param-distribution",
        set_((*FS, "distribution"), "loguniform"),
        "spec.parameters[0].feasibleSpace.distribution",
        "logUniform",
    ),
    (
        "param-min-over-max",
        set_((*FS, "min"), "1e-2"),
        "spec.parameters[0].feasibleSpace",
        "min must be <= max",
    ),
    ("param-log-min-zero", set_((*FS, "min"), "0"), "spec.parameters[0].feasibleSpace.min", "needs min > 0"),
    (
        "param-not-numeric",
        set_((*FS, "max"), "lots"),
        "spec.parameters[0].feasibleSpace.max",
        "must be a number",
    ),
    (
        "param-bare-number",
        set_((*FS, "max"), 0.0005),
        "spec.parameters[0].feasibleSpace.max",
        'quote it: max: "0.0005"',
    ),
    ("param-no-max", delete((*FS, "max")), "spec.parameters[0].feasibleSpace", "min and max are required"),
    (
        "param-empty-space",
        set_((*LR, "feasibleSpace"), {}),
        "spec.parameters[0].feasibleSpace",
        "must be specified",
    ),
    (
        "param-double-with-list",
        set_((*FS, "list"), ["1e-5"]),
        "spec.parameters[0].feasibleSpace.list",
        "not supported for double",
    ),
    (
        "param-step-negative",
        set_((*FS, "step"), "-1e-5"),
        "spec.parameters[0].feasibleSpace.step",
        "step must be a number > 0",
    ),
    (
        "param-int-bounds",
        set_(LR, {"name": "lr", "parameterType": "int", "feasibleSpace": {"min": "1.5", "max": "4"}}),
        "spec.parameters[0].feasibleSpace.min",
        "must be an integer",
    ),
    (
        "param-empty-list",
        set_((*BS, "feasibleSpace", "list"), []),
        "spec.parameters[1].feasibleSpace.list",
        "at least one value",
    ),
    (
        "param-duplicate-value",
        set_((*BS, "feasibleSpace", "list"), ["16", "32", "16"]),
        "spec.parameters[1].feasibleSpace.list[2]",
        "duplicate value",
    ),
    (
        "param-discrete-text",
        set_((*BS, "feasibleSpace", "list"), ["16", "big"]),
        "spec.parameters[1].feasibleSpace.list[1]",
        "use categorical",
    ),
    (
        "param-list-with-min",
        set_((*BS, "feasibleSpace", "min"), "16"),
        "spec.parameters[1].feasibleSpace",
        "not supported for discrete",
    ),
    (
        "param-duplicate-name",
        set_((*BS, "name"), "lr"),
        "spec.parameters[1].name",
        "duplicate parameter name",
    ),
    (
        "param-unused",
        lambda d: at(d, (*SPEC, "parameters")).append(
            {"name": "warmup", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "0.1"}}
        ),
        "spec.parameters[2].name",
        "no trialParameter references it",
    ),
    ("no-parameters", set_((*SPEC, "parameters"), []), "spec.parameters", "must be specified"),
    (
        "batch-not-divisible",
        set_((*BS, "feasibleSpace", "list"), ["16", "33"]),
        "spec.parameters[1].feasibleSpace",
        "multiple of the world size 2",
    ),
    (
        "trialparam-unknown-reference",
        set_((*TT, "trialParameters", 0, "reference"), "learning_rate"),
        "spec.trialTemplate.trialParameters[0].reference",
        "is not a parameter",
    ),
    (
        "trialparam-unused",
        lambda d: at(d, (*TT, "trialParameters")).append({"name": "seed", "reference": "lr2"}),
        "spec.trialTemplate.trialParameters[3].name",
        "is never used",
    ),
    (
        "trialparam-undeclared",
        _command_replace("${trialParameters.batchSize}", "${trialParameters.batch}"),
        "spec.trialTemplate.trialSpec",
        "not declared in trialParameters",
    ),
    (
        "trialparam-duplicate-name",
        set_((*TT, "trialParameters", 1, "name"), "learningRate"),
        "spec.trialTemplate.trialParameters[1].name",
        "duplicate trial parameter name",
    ),
    (
        "trialparam-duplicate-ref",
        set_((*TT, "trialParameters", 1, "reference"), "lr"),
        "spec.trialTemplate.trialParameters[1].reference",
        "another trial parameter",
    ),
    (
        "trialparam-bad-meta",
        set_((*TT, "trialParameters", 2, "reference"), "${trialSpec.Uid}"),
        "spec.trialTemplate.trialParameters[2].reference",
        "unknown trial metadata",
    ),
    (
        "trialparam-missing-label",
        set_((*TT, "trialParameters", 2, "reference"), "${trialSpec.Labels[team]}"),
        "spec.trialTemplate.trialParameters[2].reference",
        "has no key 'team'",
    ),
    (
        "trialparam-braces",
        set_((*TT, "trialParameters", 0, "name"), "lr}"),
        "spec.trialTemplate.trialParameters[0]",
        "must not contain",
    ),
    (
        "primary-container-missing",
        set_((*TT, "primaryContainerName"), "trainer"),
        "spec.trialTemplate.primaryContainerName",
        "no container has this name",
    ),
    (
        "primary-container-unset",
        delete((*TT, "primaryContainerName")),
        "spec.trialTemplate.primaryContainerName",
        "is required",
    ),
    (
        "template-has-name",
        set_((*TS, "metadata"), {"name": "fixed"}),
        "spec.trialTemplate.trialSpec.metadata",
        "omit name and namespace",
    ),
    (
        "template-no-kind",
        delete((*TS, "kind")),
        "spec.trialTemplate.trialSpec",
        "apiVersion and kind are required",
    ),
    (
        "template-both-sources",
        set_((*TT, "configMap"), {"configMapName": "t", "configMapNamespace": "k", "templatePath": "p"}),
        "spec.trialTemplate",
        "only one of trialSpec or configMap",
    ),
    (
        "pytorch-container-name",
        set_((*MASTER_C, "name"), "trainer"),
        "spec.trialTemplate.trialSpec.spec.pytorchReplicaSpecs.Master.template.spec.containers",
        "named 'pytorch'",
    ),
    (
        "pytorch-no-image",
        delete((*MASTER_C, "image")),
        "spec.trialTemplate.trialSpec.spec.pytorchReplicaSpecs.Master.template.spec.containers[pytorch].image",
        "is required",
    ),
    (
        "pytorch-two-masters",
        set_((*MASTER, "replicas"), 2),
        "spec.trialTemplate.trialSpec.spec.pytorchReplicaSpecs.Master.replicas",
        "exactly 1 Master",
    ),
    (
        "pytorch-chief",
        lambda d: at(d, (*TS, "spec", "pytorchReplicaSpecs")).__setitem__("Chief", {"replicas": 1}),
        "spec.trialTemplate.trialSpec.spec.pytorchReplicaSpecs.Chief",
        "only Master and Worker",
    ),
    (
        "pytorch-elastic-without-worker",
        both(
            delete((*TS, "spec", "pytorchReplicaSpecs", "Worker")),
            set_((*TS, "spec", "elasticPolicy"), {"minReplicas": 1, "maxReplicas": 2}),
        ),
        "spec.trialTemplate.trialSpec.spec.elasticPolicy",
        "needs Worker replicas",
    ),
    (
        "pytorch-nproc",
        set_((*TS, "spec", "nprocPerNode"), 2),
        "spec.trialTemplate.trialSpec.spec.nprocPerNode",
        "quoted integer",
    ),
    ("trial-template-missing", delete(TT), "spec.trialTemplate", "is required"),
]


def _problems(mapping: dict):
    try:
        exp = parse_experiment(mapping, source="case.yaml")
    except InvalidExperimentError as error:
        return error.problems
    return validate_experiment(apply_defaults(exp))


def test_there_are_at_least_40_cases():
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


def test_the_unbroken_quickstart_has_no_problems(quickstart):
    assert _problems(quickstart) == []


@pytest.mark.parametrize(("mutation", "path", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_spec_is_reported_with_path_and_fix(quickstart, mutation, path, fragment):
    mutation(quickstart)
    problems = _problems(quickstart)
    matching = [p for p in problems if p.path == path and fragment in p.message + str(p)]
    assert matching, f"expected {path}: ...{fragment}...; got:\n" + "\n".join(map(str, problems))


def test_every_problem_is_reported_at_once(quickstart):
    quickstart["spec"]["maxTrialCount"] = 0
    quickstart["spec"]["algorithm"]["algorithmName"] = "tpee"
    quickstart["spec"]["parameters"][0]["feasibleSpace"]["min"] = "1"
    quickstart["spec"]["trialTemplate"]["primaryContainerName"] = "trainer"
    paths = {p.path for p in _problems(quickstart)}
    assert {
        "spec.maxTrialCount",
        "spec.algorithm.algorithmName",
        "spec.parameters[0].feasibleSpace",
        "spec.trialTemplate.primaryContainerName",
    } <= paths


def test_error_message_lists_every_problem(quickstart):
    quickstart["spec"]["maxTrialCount"] = "four"
    quickstart["spec"]["objective"]["type"] = 3
    with pytest.raises(InvalidExperimentError) as info:
        parse_experiment(quickstart, source="broken.yaml")
    text = str(info.value)
    assert text.splitlines()[0] == "Experiment broken.yaml is not valid, found 2 problems:"
    assert "spec.maxTrialCount = 'four': must be an integer" in text
    assert "spec.objective.type = 3: must be a string" in text
