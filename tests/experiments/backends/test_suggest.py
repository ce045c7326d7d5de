"""Katib algorithms on Optuna: valid assignments within the feasible space, reproducible with random_state
(also across a re-created Suggester, as after a resume), grid exhaustion, Katib's hyperband schedule, and
clear errors for what the local backend cannot run."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from experiments.backends.local._hyperband import schedule
from experiments.backends.local._suggest import Suggester, UnsupportedAlgorithmError
from experiments.errors import KatibSuiteError
from experiments.spec import InvalidExperimentError, validate_experiment
from experiments.spec._model import (
    Algorithm,
    Experiment,
    FeasibleSpace,
    Objective,
    Parameter,
    Setting,
    TrialTemplate,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

PARAMS = (
    Parameter("lr", "double", FeasibleSpace("1e-5", "5e-5", distribution="logUniform")),
    Parameter("warmup", "double", FeasibleSpace("0.0", "0.2")),
    Parameter("bs", "int", FeasibleSpace("8", "64", step="8")),
    Parameter("layers", "discrete", FeasibleSpace(list=("2", "4", "8"))),
    Parameter("opt", "categorical", FeasibleSpace(list=("adamw", "sgd"))),
)


def experiment(algorithm, settings=(), params=PARAMS, parallel=3, objective="maximize"):
    return Experiment(
        name="exp",
        objective=Objective(objective, "acc"),
        algorithm=Algorithm(algorithm, tuple(Setting(k, str(v)) for k, v in dict(settings).items())),
        parameters=params,
        trial_template=TrialTemplate(()),
        parallel_trial_count=parallel,
    )


def score(a):
    """A smooth synthetic objective so model-based samplers have something to learn."""
    return (
        -((math.log10(float(a["lr"])) + 4.6) ** 2) - (int(a["bs"]) - 32) ** 2 / 1000 + (a["opt"] == "adamw")
    )


def run(suggester, n, study=None, direction="maximize"):
    study = study or optuna.create_study(direction=direction, sampler=suggester.sampler)
    out = []
    for _ in range(n):
        asked = suggester.ask(study)
        if asked is None:
            break
        trial, assignments = asked
        out.append(assignments)
        suggester.tell(study, trial, score(assignments), "Succeeded")
    return out, study


def assert_valid(a):
    assert set(a) == {"lr", "warmup", "bs", "layers", "opt"}
    assert all(isinstance(v, str) for v in a.values())
    assert 1e-5 <= float(a["lr"]) <= 5e-5 and a["lr"] == repr(float(a["lr"]))
    assert 0.0 <= float(a["warmup"]) <= 0.2
    assert a["bs"] in {str(b) for b in range(8, 65, 8)}
    assert a["layers"] in ("2", "4", "8") and a["opt"] in ("adamw", "sgd")


FAST = [
    ("random", {}),
    ("tpe", {"gamma": "0.3", "prior_weight": "1.5", "n_EI_candidates": "12"}),
    ("multivariate-tpe", {"n_startup_trials": "3", "n_ei_candidates": "8"}),
    ("cmaes", {"sigma": "0.3", "restart_strategy": "ipop"}),
    ("sobol", {}),
]


@pytest.mark.parametrize(("algorithm", "settings"), FAST)
def test_valid_and_reproducible_with_random_state(algorithm, settings):
    settings = {**settings, "random_state": "11"}
    first, _ = run(Suggester(experiment(algorithm, settings)), 8)
    again, _ = run(Suggester(experiment(algorithm, settings)), 8)
    other, _ = run(Suggester(experiment(algorithm, {**settings, "random_state": "12"})), 8)
    assert len(first) == 8
    for a in first:
        assert_valid(a)
    assert first == again
    assert first != other
    assert len({a["lr"] for a in first}) > 1


@pytest.mark.slow
def test_bayesianoptimization_gp_is_valid_and_reproducible():
    settings = {"random_state": "3", "n_initial_points": "2", "base_estimator": "GP", "acq_func": "gp_hedge"}
    first, _ = run(Suggester(experiment("bayesianoptimization", settings)), 4)
    again, _ = run(Suggester(experiment("bayesianoptimization", settings)), 4)
    assert first == again and len(first) == 4
    for a in first:
        assert_valid(a)


@pytest.mark.parametrize("algorithm", ["random", "tpe"])
def test_a_new_suggester_over_the_same_study_continues_the_sequence(algorithm):
    """After a resume the runner builds a new Suggester over the stored study: same assignments as one run."""
    settings = {"random_state": "5"}
    whole, _ = run(Suggester(experiment(algorithm, settings)), 6)
    head, study = run(Suggester(experiment(algorithm, settings)), 3)
    tail, _ = run(Suggester(experiment(algorithm, settings)), 3, study=study)
    assert head + tail == whole


def test_several_asks_before_tells():
    s = Suggester(experiment("tpe", {"random_state": "1"}))
    study = optuna.create_study(direction="maximize", sampler=s.sampler)
    asked = [s.ask(study) for _ in range(4)]
    assert len({t.number for t, _ in asked}) == 4
    for trial, a in asked:
        assert_valid(a)
        s.tell(study, trial, score(a), "Succeeded")
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_distributions_keep_katib_types_and_strings():
    params = (
        Parameter("n", "double", FeasibleSpace("-1", "1", distribution="normal")),
        Parameter("ln", "double", FeasibleSpace("0.001", "1", distribution="logNormal")),
        Parameter("q", "double", FeasibleSpace("0.1", "0.5", step="0.1")),
        Parameter("bs", "int", FeasibleSpace("16", "64", step="16")),
        Parameter("k", "int", FeasibleSpace("1", "1024", distribution="logUniform")),
        Parameter("d", "discrete", FeasibleSpace(list=("16", "32"))),
    )
    s = Suggester(experiment("random", {"random_state": "0"}, params=params))
    assert s.distributions["n"] == FloatDistribution(-1, 1)
    assert s.distributions["ln"] == FloatDistribution(0.001, 1, log=True)
    assert s.distributions["q"] == FloatDistribution(0.1, 0.5, step=0.1)
    assert s.distributions["bs"] == IntDistribution(16, 64, step=16)
    assert s.distributions["k"] == IntDistribution(1, 1024, log=True)
    assert s.distributions["d"] == CategoricalDistribution(("16", "32"))
    study = optuna.create_study(sampler=s.sampler)
    for _ in range(20):
        _, a = s.ask(study)
        assert -1 <= float(a["n"]) <= 1 and 0.001 <= float(a["ln"]) <= 1
        assert a["bs"] in ("16", "32", "48", "64") and a["d"] in ("16", "32")
        assert 1 <= int(a["k"]) <= 1024


def test_grid_covers_the_feasible_grid_then_ends():
    params = (
        Parameter("lr", "double", FeasibleSpace("0.1", "0.3", step="0.1")),
        Parameter("bs", "int", FeasibleSpace("16", "32", step="16")),
        Parameter("opt", "categorical", FeasibleSpace(list=("adamw", "sgd"))),
    )
    s = Suggester(experiment("grid", {"random_state": "2"}, params=params))
    assert s.grid_size() == 12
    study = optuna.create_study(direction="maximize", sampler=s.sampler)
    # all 12 asked before any tell (parallel trials): still 12 distinct points, then None
    asked = [s.ask(study) for _ in range(12)]
    assert s.ask(study) is None and s.done(study)
    points = {(a["lr"], a["bs"], a["opt"]) for _, a in asked}
    assert points == {
        (lr, bs, o) for lr in ("0.1", "0.2", "0.3") for bs in ("16", "32") for o in ("adamw", "sgd")
    }
    for trial, _ in asked:
        s.tell(study, trial, None, "Failed")
    assert s.ask(study) is None  # failed points are not retried, as on Katib


def test_grid_needs_a_step_for_doubles():
    with pytest.raises(InvalidExperimentError, match=r"grid needs a step for double parameter 'lr'"):
        Suggester(experiment("grid"))


def test_tell_maps_katib_conditions_to_optuna_states():
    s = Suggester(experiment("random"))
    study = optuna.create_study(sampler=s.sampler)
    cases = [
        ("Succeeded", 0.5, TrialState.COMPLETE),
        ("EarlyStopped", 0.4, TrialState.COMPLETE),
        ("Succeeded", None, TrialState.FAIL),
        ("Failed", None, TrialState.FAIL),
        ("MetricsUnavailable", None, TrialState.FAIL),
        ("Killed", 0.9, TrialState.FAIL),
    ]
    for condition, value, _ in cases:
        trial, _ = s.ask(study)
        s.tell(study, trial, value, condition)
        s.tell(study, trial.number, value, condition)  # idempotent (resume may tell again)
    assert [t.state for t in study.trials] == [state for *_, state in cases]
    assert study.trials[1].value == 0.4


def hyperband_experiment(r_l="9", eta="3", parallel=9, **extra):
    params = (
        Parameter("epochs", "int", FeasibleSpace("1", "9")),
        Parameter("lr", "double", FeasibleSpace("0.01", "0.1")),
    )
    settings = {"resource_name": "epochs", "r_l": r_l, "eta": eta, "random_state": "4", **extra}
    return experiment("hyperband", settings, params=params, parallel=parallel)


def test_hyperband_schedule_matches_katib():
    # r_l=9, eta=3: s_max=2; brackets (n, r) = (9, 1), (5, 3), (3, 9); successive halving by eta.
    assert [(r.bracket, r.rung, r.size, r.resource) for r in schedule(9, 3)] == [
        (2, 0, 9, 1), (2, 1, 3, 3), (2, 2, 1, 9), (1, 0, 5, 3), (1, 1, 2, 9), (0, 0, 3, 9),
    ]  # fmt: skip
    assert [(r.size, r.resource) for r in schedule(81, 3) if r.bracket == 4] == [
        (81, 1),
        (27, 3),
        (9, 9),
        (3, 27),
        (1, 81),
    ]


def test_hyperband_runs_brackets_and_promotes_the_best():
    s = Suggester(hyperband_experiment())
    study = optuna.create_study(direction="maximize", sampler=s.sampler)
    history = []
    while not s.done(study):
        batch = []
        while (asked := s.ask(study)) is not None:  # a whole rung can run in parallel
            batch.append(asked)
        assert batch, "ask returned None although the schedule is not done and nothing runs"
        for trial, a in batch:
            history.append(a)
            s.tell(study, trial, float(a["lr"]) * int(a["epochs"]), "Succeeded")  # best lr wins each rung
        # None while the rung runs, new trials once it is over
    assert [int(a["epochs"]) for a in history] == [1] * 9 + [3] * 3 + [9] + [3] * 5 + [9] * 2 + [9] * 3
    first_rung = sorted(history[:9], key=lambda a: float(a["lr"]), reverse=True)
    assert [a["lr"] for a in history[9:12]] == [a["lr"] for a in first_rung[:3]]
    assert history[12]["lr"] == first_rung[0]["lr"]
    assert s.ask(study) is None


def test_hyperband_waits_for_a_rung_and_survives_a_new_suggester():
    s = Suggester(hyperband_experiment())
    study = optuna.create_study(direction="maximize", sampler=s.sampler)
    rung0 = [s.ask(study) for _ in range(9)]
    assert s.ask(study) is None and not s.done(study)  # rung 1 needs all of rung 0
    for i, (trial, _) in enumerate(rung0):
        s.tell(study, trial, float(i), "Succeeded" if i else "Failed")
    fresh = Suggester(hyperband_experiment())  # the runner after a resume
    promoted = [fresh.ask(study) for _ in range(3)]
    assert [a["epochs"] for _, a in promoted] == ["3", "3", "3"]
    assert [a["lr"] for _, a in promoted] == [rung0[i][1]["lr"] for i in (8, 7, 6)]


HB_PARAMS = (
    Parameter("epochs", "int", FeasibleSpace("1", "9")),
    Parameter("lr", "double", FeasibleSpace("0.01", "0.1")),
)
CMAES_ONE_CONTINUOUS = (
    Parameter("lr", "double", FeasibleSpace("0.1", "0.2")),
    Parameter("o", "categorical", FeasibleSpace(list=("a",))),
)


def settings_problems(exp, backend="local"):
    """validate's problems about the algorithm and search space (these test experiments have no template)."""
    paths = ("spec.algorithm", "spec.parameters", "spec.parallelTrialCount", "spec.maxTrialCount")
    problems = validate_experiment(exp, backend=backend)
    return [p for p in problems if p.path.startswith(paths) and "trialParameter" not in p.message]


# (algorithm, settings, params, parallel, what the spec says): the Suggester must refuse each with exactly the
# problems `validate` reports (one rule, in the spec), never with a message of its own.
REFUSED = [
    ("hyperband", {"r_l": "9"}, HB_PARAMS, 9, "hyperband requires the setting 'resource_name'"),
    ("hyperband", {"resource_name": "steps", "r_l": "9"}, HB_PARAMS, 9, "must be one of the parameters"),
    ("hyperband", {"resource_name": "epochs", "r_l": "-1"}, HB_PARAMS, 9, "r_l must be >= 1"),
    ("hyperband", {"resource_name": "epochs", "r_l": "9"}, HB_PARAMS, 3, "needs parallelTrialCount >= 9"),
    ("hyperband", {"resource_name": "epochs", "r_l": "9", "s_mx": "1"}, HB_PARAMS, 9, "unknown setting"),
    ("tpe", {"gamma": "1.5"}, PARAMS, 3, "tpe gamma must be in the open range (0, 1)"),
    ("tpe", {"n_ei_candidates": "3"}, PARAMS, 3, "n_EI_candidates, random_state]"),
    ("random", {"random_state": "abc"}, PARAMS, 3, "random_state must be an integer"),
    ("random", {"random_state": str(2**32)}, PARAMS, 3, "random_state must be <= 4294967295"),
    ("cmaes", {"restart_strategy": "sometimes"}, PARAMS, 3, "must be one of [none, ipop, bipop]"),
    ("cmaes", {"sigma": "0"}, PARAMS, 3, "cmaes sigma must be > 0"),
    ("bayesianoptimization", {"acq_func": "UCB"}, PARAMS, 3, "acq_func must be one of"),
    ("multivariate-tpe", {"n_ei_candidates": "0"}, PARAMS, 3, "n_ei_candidates must be >= 1"),
    ("cmaes", {}, CMAES_ONE_CONTINUOUS, 3, "CMA-ES needs two or more double/int parameters"),
]


@pytest.mark.parametrize(("algorithm", "settings", "params", "parallel", "message"), REFUSED)
def test_the_suggester_refuses_with_the_specs_own_problems(algorithm, settings, params, parallel, message):
    exp = experiment(algorithm, settings, params=params, parallel=parallel)
    problems = settings_problems(exp)
    assert any(message in str(p) for p in problems), problems
    with pytest.raises(InvalidExperimentError) as error:
        Suggester(exp)
    assert message in str(error.value)
    assert set(error.value.problems) <= set(problems)  # the same Problem objects, not a second rule


@pytest.mark.parametrize(
    ("algorithm", "settings", "params"),
    [
        ("sobol", {"random_state": "7"}, PARAMS),  # Katib's goptuna sobol ignores it; here it scrambles
        ("hyperband", {"resource_name": "epochs", "r_l": "9", "random_state": "7"}, HB_PARAMS),
        # hyperband's own bracket state, as Katib writes it back into the settings
        ("hyperband", {"resource_name": "epochs", "r_l": "9", "b_l": "27.0", "s_max": "2"}, HB_PARAMS),
        ("random", {"random_state": str(2**32 - 1)}, PARAMS),
    ],
)
def test_settings_katib_accepts_pass_validate_and_build(algorithm, settings, params):
    exp = experiment(algorithm, settings, params=params, parallel=9)
    assert settings_problems(exp) == []
    s = Suggester(exp)
    study = optuna.create_study(direction="maximize", sampler=s.sampler)
    assert s.ask(study) is not None


@pytest.mark.parametrize(
    ("algorithm", "settings"),
    [("pbt", {}), ("enas", {}), ("darts", {}), ("bayesianoptimization", {"base_estimator": "RF"})],
)
def test_what_only_katib_runs_is_refused_naming_the_cluster_backend(algorithm, settings):
    exp = experiment(algorithm, settings)
    local = [p for p in settings_problems(exp) if "--backend cluster" in p.message]
    assert local, "validate must report it for the local backend"
    assert not [p for p in settings_problems(exp, "cluster") if "--backend cluster" in p.message]
    with pytest.raises(UnsupportedAlgorithmError) as error:
        Suggester(exp)
    assert "not supported by the local backend" in str(error.value) or "must be GP" in str(error.value)
    assert "--backend cluster" in str(error.value)


def test_unknown_algorithm_is_the_specs_problem():
    with pytest.raises(KatibSuiteError, match=r"algorithmName = 'bogus': must be one of \[random, tpe"):
        Suggester(experiment("bogus"))


def test_log_double_on_a_step_grid_is_a_local_limit():
    params = (
        Parameter("lr", "double", FeasibleSpace("0.001", "0.1", step="0.01", distribution="logUniform")),
    )
    exp = experiment("random", params=params)
    assert [p.path for p in settings_problems(exp)] == ["spec.parameters[0].feasibleSpace.step"]
    assert settings_problems(exp, "cluster") == []
    with pytest.raises(
        UnsupportedAlgorithmError, match="Optuna cannot sample a logUniform double on a step grid"
    ):
        Suggester(exp)


def test_bad_feasible_space_is_a_clear_error():
    params = (Parameter("lr", "double", FeasibleSpace("0.5", "0.1")),)
    assert settings_problems(experiment("random", params=params))  # validate reports it first
    with pytest.raises(KatibSuiteError, match=r"spec.parameters 'lr' \(double, min=0.5, max=0.1\)"):
        Suggester(experiment("random", params=params))
