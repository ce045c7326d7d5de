"""Every algorithm the local backend supports, end to end through the runner (not just the Suggester).

Each experiment runs the stand-in trial program (``--score``: its objective is a fixed function of the searched
parameters, one value per epoch), keeps its state in SQLite under tmp_path, and must end the way Katib ends it:
Succeeded with ExperimentMaxTrialsReached, or ExperimentSuggestionEndReached once grid is exhausted or
hyperband's schedule is over. Assignments stay in the feasible space, reach the trial as its arguments, and the
optimal trial is the one that reported the best objective.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
from pathlib import Path

import optuna
import pytest

from experiments.backends._protocol import (
    EXPERIMENT_SUCCEEDED,
    REASON_MAX_TRIALS_REACHED,
    REASON_SUGGESTION_END_REACHED,
    TRIAL_SUCCEEDED,
)
from experiments.backends.local import LocalBackend
from experiments.backends.local._hyperband import schedule
from experiments.cli import main
from experiments.spec import (
    Algorithm,
    Experiment,
    FeasibleSpace,
    MetricsCollector,
    Objective,
    Parameter,
    Setting,
    TrialParameter,
    TrialTemplate,
    to_yaml,
    validate_experiment,
)
from tests.experiments.backends._local_helpers import pytorchjob
from tests.experiments.backends.standin_trial import score

LR = FeasibleSpace(min="0.01", max="0.05")
UNITS = FeasibleSpace(min="1", max="2")
TAGS = ("a", "b")


def parameters(algorithm: str, settings: dict[str, str]) -> tuple[Parameter, ...]:
    # grid needs a step for a double (Katib's rule): 3 x 2 x 2 = 12 points.
    lr = FeasibleSpace(min="0.01", max="0.05", step="0.02") if algorithm == "grid" else LR
    params = [
        Parameter("lr", "double", lr),
        Parameter("units", "int", UNITS),
        Parameter("tag", "categorical", FeasibleSpace(list=TAGS)),
    ]
    if algorithm == "hyperband":
        # The resource parameter: an int whose feasible space holds every budget (1 .. r_l).
        params.append(Parameter("epochs", "int", FeasibleSpace(min="1", max=settings["r_l"])))
    return tuple(params)


def experiment(
    name: str, tmp_path: Path, algorithm: str, settings: dict[str, str], max_trials: int | None, parallel: int
) -> Experiment:
    epochs = "${trialParameters.epochs}" if algorithm == "hyperband" else "2"
    args = [
        "--score",
        "--lr=${trialParameters.learningRate}",
        "--units=${trialParameters.units}",
        "--tag=${trialParameters.tag}",
        f"--epochs={epochs}",
        f"--record-dir={tmp_path / 'records'}",
    ]
    trial_parameters = [
        TrialParameter("learningRate", "lr"),
        TrialParameter("units", "units"),
        TrialParameter("tag", "tag"),
    ]
    if algorithm == "hyperband":
        trial_parameters.append(TrialParameter("epochs", "epochs"))
    exp = Experiment(
        name=name,
        objective=Objective(type="maximize", objective_metric_name="accuracy"),
        algorithm=Algorithm(algorithm, tuple(Setting(k, v) for k, v in settings.items())),
        parameters=parameters(algorithm, settings),
        trial_template=TrialTemplate(
            trial_parameters=tuple(trial_parameters),
            trial_spec=pytorchjob(args, workers=0),  # Master only: one process per trial
            primary_container_name="pytorch",
            primary_pod_labels={"training.kubeflow.org/job-role": "master"},
        ),
        namespace="default",
        metrics_collector=MetricsCollector(kind="StdOut"),
        parallel_trial_count=parallel,
        max_trial_count=max_trials,
        max_failed_trial_count=1,
    )
    # What Katib's webhook accepts, so these are experiments a user could submit to a cluster too.
    assert validate_experiment(exp) == []
    return exp


def expected_values(parameters: dict[str, str], epochs: int) -> list[str]:
    args = argparse.Namespace(
        lr=parameters["lr"], units=parameters["units"], tag=parameters["tag"], epochs=epochs
    )
    return score(args).split(",")


def best_value(trial) -> float:
    return float(trial.metric("accuracy").max)  # maximize -> Katib's default strategy: max


def config(trial) -> tuple[str, str, str]:
    return trial.parameters["lr"], trial.parameters["units"], trial.parameters["tag"]


# ---------------------------------------------------------------- algorithm-specific checks


def grid_checks(trials, exp) -> None:
    points = set(itertools.product(("0.01", "0.03", "0.05"), ("1", "2"), TAGS))
    assert {config(t) for t in trials} == points  # every grid point, each exactly once
    assert len(trials) == len(points)


def hyperband_checks(trials, exp) -> None:
    rungs = schedule(9, 3)
    by_start = sorted(trials, key=lambda t: t.start_time)
    # Katib's budgets, in Katib's order: brackets s = 2, 1, 0, each rung with eta-times the budget of the last.
    expected = [r.resource for r in rungs for _ in range(r.size)]
    assert (
        [int(t.parameters["epochs"]) for t in by_start]
        == expected
        == [1] * 9 + [3] * 3 + [9] + [3] * 5 + [9] * 2 + [9] * 3
    )
    # Each trial trained for the budget it was given (one objective value per epoch).
    for t in trials:
        assert len([o for o in t.observations if o.name == "accuracy"]) == int(t.parameters["epochs"])
    groups, start = [], 0
    for rung in rungs:
        groups.append((rung, by_start[start : start + rung.size]))
        start += rung.size
    for (prev_rung, prev), (rung, group) in itertools.pairwise(groups):
        if rung.rung == 0:
            # A new bracket: fresh random configurations. Like Katib's service, it may start while the last
            # rung of the bracket before still runs (that rung promotes nothing).
            assert len({config(t) for t in group}) == len(group)
            continue
        # A rung starts only once every trial of the rung it promotes from is over.
        assert min(t.start_time for t in group) >= max(t.completion_time for t in prev)
        # Successive halving: the best of the previous rung go on, with eta times the budget.
        ranked = sorted(prev, key=best_value, reverse=True)
        assert [config(t) for t in group] == [config(t) for t in ranked[: rung.size]]
        assert all(int(t.parameters["epochs"]) == 3 * prev_rung.resource for t in group)


CASES = [
    # algorithm, settings, maxTrialCount, parallelTrialCount, trials run, reason
    ("random", {"random_state": "7"}, 6, 2, 6, REASON_MAX_TRIALS_REACHED),
    ("tpe", {"random_state": "7"}, 6, 2, 6, REASON_MAX_TRIALS_REACHED),
    ("multivariate-tpe", {"n_startup_trials": "2", "random_state": "7"}, 6, 2, 6, REASON_MAX_TRIALS_REACHED),
    # Katib rejects a grid maxTrialCount above the grid's size; without one, the grid's end ends it.
    ("grid", {"random_state": "7"}, None, 3, 12, REASON_SUGGESTION_END_REACHED),
    ("cmaes", {"random_state": "7", "sigma": "0.3"}, 6, 2, 6, REASON_MAX_TRIALS_REACHED),
    (
        "bayesianoptimization",
        {"n_initial_points": "2", "random_state": "7"},
        5,
        2,
        5,
        REASON_MAX_TRIALS_REACHED,
    ),
    ("sobol", {}, 6, 2, 6, REASON_MAX_TRIALS_REACHED),
    # r_l=9, eta=3: 23 trials over 3 brackets; maxTrialCount leaves room, so the schedule's end ends it.
    (
        "hyperband",
        {"resource_name": "epochs", "r_l": "9", "eta": "3"},
        30,
        9,
        23,
        REASON_SUGGESTION_END_REACHED,
    ),
]
EXTRA_CHECKS = {"grid": grid_checks, "hyperband": hyperband_checks}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("algorithm", "settings", "max_trials", "parallel", "runs", "reason"), CASES, ids=[c[0] for c in CASES]
)
def test_algorithm_runs_to_katibs_end_through_the_runner(
    algorithm, settings, max_trials, parallel, runs, reason, tmp_path, monkeypatch
):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    storage = f"sqlite:///{tmp_path / 'katib.db'}"
    name = f"alg-{algorithm}"
    exp = experiment(name, tmp_path, algorithm, settings, max_trials, parallel)

    status = LocalBackend(storage=storage, workdir=tmp_path).submit(exp).wait(timeout=240)

    assert (status.condition, status.reason) == (EXPERIMENT_SUCCEEDED, reason), status.message
    trials = status.trials
    assert len(trials) == runs
    assert all(t.condition == TRIAL_SUCCEEDED for t in trials), [(t.name, t.message) for t in trials]
    for t in trials:
        lr, units, tag = config(t)
        assert LR.low <= float(lr) <= LR.high and units in ("1", "2") and tag in TAGS, t.parameters
        epochs = int(t.parameters.get("epochs", "2"))
        # The assignments reached the trial as its arguments, and what it reported came back unchanged.
        argv = json.loads((tmp_path / "records" / f"{t.name}-0.json").read_text())["argv"]
        assert {f"--lr={lr}", f"--units={units}", f"--tag={tag}", f"--epochs={epochs}"} <= set(argv)
        assert [o.value for o in t.observations if o.name == "accuracy"] == expected_values(
            t.parameters, epochs
        )
    if algorithm != "hyperband":  # hyperband re-runs promoted configurations on purpose
        assert len({config(t) for t in trials}) == len(trials), "a configuration was suggested twice"

    # Katib's optimal trial: the best objective under its strategy (max for maximize).
    best = max(trials, key=best_value)
    assert status.optimal_trial.name == best.name
    assert status.optimal_trial.parameters == best.parameters

    # The suggestion service saw every result: one COMPLETE Optuna trial per Katib trial, with its value.
    study = optuna.load_study(study_name=name, storage=storage)
    told = {t.user_attrs["katib_trial"]: t for t in study.get_trials(deepcopy=False)}
    assert set(told) == {t.name for t in trials}
    for t in trials:
        assert told[t.name].state == optuna.trial.TrialState.COMPLETE
        assert math.isclose(told[t.name].value, best_value(t))

    if algorithm in EXTRA_CHECKS:
        EXTRA_CHECKS[algorithm](trials, exp)


@pytest.mark.slow
def test_hyperband_cut_short_by_max_trial_count(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    settings = {"resource_name": "epochs", "r_l": "4", "eta": "2"}  # s_max=2: rungs of 4, 2, 1 trials, ...
    exp = experiment("hb-short", tmp_path, "hyperband", settings, max_trials=6, parallel=4)

    status = (
        LocalBackend(storage=f"sqlite:///{tmp_path / 'k.db'}", workdir=tmp_path).submit(exp).wait(timeout=120)
    )

    assert (status.condition, status.reason) == (EXPERIMENT_SUCCEEDED, REASON_MAX_TRIALS_REACHED)
    by_start = sorted(status.trials, key=lambda t: t.start_time)
    assert [t.parameters["epochs"] for t in by_start] == ["1"] * 4 + ["2"] * 2
    ranked = sorted(by_start[:4], key=best_value, reverse=True)
    assert [config(t) for t in by_start[4:]] == [config(t) for t in ranked[:2]]


# ---------------------------------------------------------------- algorithms only a cluster runs


# Katib's NAS experiments: nasConfig instead of parameters, and the trial gets what the NAS service generates.
NAS_CONFIG = {
    "graphConfig": {"numLayers": 2, "inputSizes": [32, 32, 3], "outputSizes": [10]},
    "operations": [
        {
            "operationType": "convolution",
            "parameters": [
                {"name": "filter_size", "parameterType": "categorical", "feasibleSpace": {"list": ["3", "5"]}}
            ],
        }
    ],
}
NAS_REFERENCES = {
    "enas": ("architecture", "nn_config"),
    "darts": ("algorithm-settings", "search-space", "num-layers"),
}


def cluster_only(algorithm: str, tmp_path: Path) -> Experiment:
    """A Katib-valid experiment for an algorithm only Katib's own services run."""
    exp = experiment(f"alg-{algorithm}", tmp_path, "random", {}, max_trials=2, parallel=1)
    if algorithm == "pbt":
        settings = {
            "suggestion_trial_dir": "/var/log/katib/checkpoints/",
            "n_population": "5",
            "truncation_threshold": "0.4",
        }
        pbt = Algorithm("pbt", tuple(Setting(k, v) for k, v in settings.items()))
        return dataclasses.replace(exp, algorithm=pbt, resume_policy="FromVolume")
    references = NAS_REFERENCES[algorithm]
    template = TrialTemplate(
        trial_parameters=tuple(TrialParameter(f"nas{i}", ref) for i, ref in enumerate(references)),
        trial_spec=pytorchjob(
            [f"--nas{i}=${{trialParameters.nas{i}}}" for i in range(len(references))], workers=0
        ),
        primary_container_name="pytorch",
    )
    nas = dataclasses.replace(
        exp, algorithm=Algorithm(algorithm), parameters=(), nas_config=NAS_CONFIG, trial_template=template
    )
    assert validate_experiment(nas, backend="cluster") == []  # Katib-valid; the local backend refuses it
    return nas


@pytest.mark.parametrize("algorithm", ["pbt", "enas", "darts"])
def test_cluster_only_algorithms_are_refused_at_submit_with_one_clear_line(
    algorithm, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / f"{algorithm}.yaml"
    path.write_text(to_yaml(cluster_only(algorithm, tmp_path)))

    code = main(["experiment", "submit", str(path), "--storage", f"sqlite:///{tmp_path / 'k.db'}"])

    err = capsys.readouterr().err
    assert code == 1
    assert f"algorithm '{algorithm}' is not supported by the local backend" in err
    assert "--backend cluster" in err and "Traceback" not in err
    assert not (tmp_path / "records").exists()  # no trial ran
