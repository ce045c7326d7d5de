"""Algorithm and early-stopping settings, checked the way Katib's suggestion services check them.

Sources (kubeflow/katib pkg/suggestion/v1beta1/*/service.py, goptuna/converter.go and
pkg/earlystopping/v1beta1/medianstop/service.py), with the stock katib-config mapping of each
algorithm name to its service. Settings a service would silently ignore are rejected here: a typo in
a setting name otherwise costs a whole experiment.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from experiments.spec._errors import Problem
from experiments.spec._model import Experiment

Check = Callable[[str], str | None]  # setting value -> what is wrong (None: fine)


def _int(low: int | None = None, high: int | None = None) -> Check:
    def check(value: str) -> str | None:
        try:
            number = int(value)
        except ValueError:
            return "must be an integer"
        if low is not None and number < low:
            return f"must be >= {low}"
        if high is not None and number > high:
            return f"must be <= {high}"
        return None

    return check


def _float(check_range: Callable[[float], bool], rule: str) -> Check:
    def check(value: str) -> str | None:
        try:
            number = float(value)
        except ValueError:
            return "must be a number"
        if math.isnan(number) or not check_range(number):
            return f"must be {rule}"
        return None

    return check


def _one_of(*choices: str) -> Check:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of [{', '.join(choices)}]"

    return check


def _any(value: str) -> str | None:
    return None


@dataclass(frozen=True)
class AlgorithmRule:
    service: str  # which Katib suggestion service runs it (stock katib-config)
    settings: dict[str, Check] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    extra: Callable[[Experiment, dict[str, str]], list[Problem]] | None = None
    open_settings: bool = False  # NAS services take many settings; not mirrored here


_ALGO = "spec.algorithm"


def _continuous(exp: Experiment) -> int:
    return sum(1 for p in exp.parameters if p.parameter_type in ("double", "int"))


def _cmaes(exp: Experiment, settings: dict[str, str]) -> list[Problem]:
    if _continuous(exp) < 2:
        return [
            Problem(
                f"{_ALGO}.algorithmName",
                "cmaes",
                "CMA-ES needs two or more double/int parameters; add one or use tpe",
            )
        ]
    return []


def _grid_values(p) -> list | None:
    fs = p.feasible_space
    try:
        if p.parameter_type == "int":
            step = int(fs.step) if fs.step else 1
            return list(range(int(fs.min), int(fs.max) + 1, step)) if step > 0 else None
        if p.parameter_type == "double":
            step = float(fs.step)
            low, high = float(fs.min), float(fs.max)
            if step <= 0:
                return None
            count = math.floor((high - low) / step + 1e-9) + 1
            return [low + i * step for i in range(count)]
    except (TypeError, ValueError):
        return None
    return list(fs.list)


def _grid(exp: Experiment, settings: dict[str, str]) -> list[Problem]:
    problems = []
    sizes = []
    for i, p in enumerate(exp.parameters):
        if p.parameter_type == "double" and not p.feasible_space.step:
            problems.append(
                Problem(
                    f"spec.parameters[{i}].feasibleSpace.step",
                    None,
                    f"grid needs a step for double parameter {p.name!r}; set feasibleSpace.step",
                )
            )
            continue
        values = _grid_values(p)
        if values is None:
            return problems  # the feasible-space checks report the bad bounds
        sizes.append(len(values))
    if not problems and sizes and exp.max_trial_count is not None:
        combinations = math.prod(sizes)
        if exp.max_trial_count > combinations:
            problems.append(
                Problem(
                    "spec.maxTrialCount",
                    exp.max_trial_count,
                    f"grid has only {combinations} combinations; set maxTrialCount <= {combinations}",
                )
            )
    return problems


def _hyperband(exp: Experiment, settings: dict[str, str]) -> list[Problem]:
    problems = []
    try:
        r_l = float(settings.get("r_l", ""))
    except ValueError:
        return problems  # reported by the r_l check
    eta = 3
    if "eta" in settings:
        try:
            eta = int(float(settings["eta"]))
        except ValueError:
            return problems
        eta = eta if eta > 0 else 3  # Katib's own fallback
    if eta == 1 or r_l <= 0:
        return problems
    s_max = int(math.log(r_l) / math.log(eta))
    need = math.ceil(eta**s_max)
    if exp.parallel_trial_count is not None and exp.parallel_trial_count < need:
        problems.append(
            Problem(
                "spec.parallelTrialCount",
                exp.parallel_trial_count,
                f"hyperband with r_l={settings['r_l']} and eta={eta} needs parallelTrialCount >= {need}",
            )
        )
    resource = settings.get("resource_name")
    names = [p.name for p in exp.parameters]
    if resource is not None and resource not in names:
        problems.append(
            Problem(
                f"{_ALGO}.algorithmSettings",
                resource,
                f"hyperband resource_name must be one of the parameters [{', '.join(names)}]",
            )
        )
    return problems


def _pbt(exp: Experiment, settings: dict[str, str]) -> list[Problem]:
    if exp.resume_policy != "FromVolume":
        return [
            Problem(
                "spec.resumePolicy",
                exp.resume_policy,
                "pbt keeps its population's checkpoints on the suggestion volume; set resumePolicy: FromVolume",
            )
        ]
    return []


_RANDOM_STATE = _int(0)
ALGORITHMS: dict[str, AlgorithmRule] = {
    "random": AlgorithmRule("hyperopt", {"random_state": _RANDOM_STATE}),
    "tpe": AlgorithmRule(
        "hyperopt",
        {
            "gamma": _float(lambda x: 0 < x < 1, "in the open range (0, 1)"),
            "prior_weight": _float(lambda x: x > 0, "> 0"),
            "n_EI_candidates": _int(1),
            "random_state": _RANDOM_STATE,
        },
    ),
    "grid": AlgorithmRule("optuna", {"random_state": _RANDOM_STATE}, extra=_grid),
    "multivariate-tpe": AlgorithmRule(
        "optuna", {"n_startup_trials": _int(0), "n_ei_candidates": _int(0), "random_state": _RANDOM_STATE}
    ),
    "cmaes": AlgorithmRule(
        "goptuna",
        {
            "random_state": _RANDOM_STATE,
            "sigma": _float(lambda x: x >= 0, ">= 0"),
            "restart_strategy": _one_of("none", "ipop", "bipop"),
        },
        extra=_cmaes,
    ),
    "sobol": AlgorithmRule("goptuna"),
    "bayesianoptimization": AlgorithmRule(
        "skopt",
        {
            "base_estimator": _one_of("GP", "RF", "ET", "GBRT"),
            "n_initial_points": _int(0),
            "acq_func": _one_of("gp_hedge", "LCB", "EI", "PI", "EIps", "PIps"),
            "acq_optimizer": _one_of("auto", "sampling", "lbfgs"),
            "random_state": _RANDOM_STATE,
        },
    ),
    "hyperband": AlgorithmRule(
        "hyperband",
        {
            "resource_name": _any,
            "r_l": _float(lambda x: x > 0, "a positive number"),
            "eta": _float(lambda x: x <= 0 or x >= 2, ">= 2 (eta = 1 divides by log(1) = 0)"),
            # Hyperband writes its bracket state back into the settings; accept it on resume.
            **{
                k: _float(lambda x: True, "a number")
                for k in ("b_l", "n", "r", "s_max", "current_s", "current_i")
            },
            "evaluating_trials": _float(lambda x: True, "a number"),
        },
        required=("r_l", "resource_name"),
        extra=_hyperband,
    ),
    "pbt": AlgorithmRule(
        "pbt",
        {
            "suggestion_trial_dir": _any,
            "n_population": _int(5),
            "truncation_threshold": _float(lambda x: 0 <= x <= 1, "between 0 and 1"),
            "resample_probability": _float(lambda x: 0 <= x <= 1, "between 0 and 1"),
        },
        required=("suggestion_trial_dir", "n_population", "truncation_threshold"),
        extra=_pbt,
    ),
    "enas": AlgorithmRule("enas", open_settings=True),
    "darts": AlgorithmRule("darts", open_settings=True),
}

EARLY_STOPPING: dict[str, AlgorithmRule] = {
    "medianstop": AlgorithmRule("medianstop", {"min_trials_required": _int(1), "start_step": _int(1)}),
}
NAS_ALGORITHMS = ("enas", "darts")


def check_settings(
    exp: Experiment, path: str, name: str, settings, registry: dict[str, AlgorithmRule], what: str
) -> list[Problem]:
    rule = registry.get(name)
    if rule is None:
        return [
            Problem(f"{path}.algorithmName", name, f"must be one of [{', '.join(registry)}]; got: {name}")
        ]
    problems = []
    seen: dict[str, str] = {}
    for i, setting in enumerate(settings):
        s_path = f"{path}.algorithmSettings[{i}]"
        if setting.name in seen:
            problems.append(Problem(f"{s_path}.name", setting.name, "duplicate setting; keep one"))
            continue
        seen[setting.name] = setting.value
        if rule.open_settings:
            continue
        check = rule.settings.get(setting.name)
        if check is None:
            allowed = ", ".join(rule.settings) or "none"
            problems.append(
                Problem(
                    f"{s_path}.name",
                    setting.name,
                    f"unknown setting for {what} {name}; must be one of [{allowed}]",
                )
            )
            continue
        error = check(setting.value)
        if error:
            problems.append(Problem(f"{s_path}.value", setting.value, f"{name} {setting.name} {error}"))
    for key in rule.required:
        if key not in seen:
            problems.append(
                Problem(f"{path}.algorithmSettings", None, f"{name} requires the setting {key!r}")
            )
    if rule.extra is not None and not problems:
        problems += rule.extra(exp, seen)
    return problems


__all__ = ["ALGORITHMS", "EARLY_STOPPING", "NAS_ALGORITHMS", "AlgorithmRule", "check_settings"]
