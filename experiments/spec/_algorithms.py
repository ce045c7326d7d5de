"""Algorithm and early-stopping settings, checked the way Katib's suggestion services check them.

Sources (kubeflow/katib pkg/suggestion/v1beta1/*/service.py, goptuna/converter.go and
pkg/earlystopping/v1beta1/medianstop/service.py), with the stock katib-config mapping of each
algorithm name to its service. Settings a service would silently ignore are rejected here: a typo in
a setting name otherwise costs a whole experiment. Each check parses the value as well, so the typed
settings (``_settings``) come out of the same pass that validates them: one rule, one place.

Where Katib accepts a setting and ignores it, so do we (and say so): ``random_state`` for ``sobol``
(goptuna's Sobol sampler takes no seed) and ``hyperband`` (its service samples unseeded), and the
bracket state hyperband writes back into its settings (``b_l``, ``s_max``, ...). The local backend
uses ``random_state`` in both to make the run reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from experiments.spec._errors import Problem
from experiments.spec._model import Experiment

# setting value -> (parsed value, what is wrong); the error is None when the value is fine.
Check = Callable[[str], tuple[Any, str | None]]
# numpy's seed range: hyperopt's RandomState, skopt, Optuna's samplers and goptuna all take it.
MAX_RANDOM_STATE = 2**32 - 1


def _int(low: int | None = None, high: int | None = None) -> Check:
    def check(value: str) -> tuple[Any, str | None]:
        try:
            number = int(value)
        except (TypeError, ValueError):
            return None, "must be an integer"
        if low is not None and number < low:
            return None, f"must be >= {low}"
        if high is not None and number > high:
            return None, f"must be <= {high}"
        return number, None

    return check


def _float(check_range: Callable[[float], bool], rule: str) -> Check:
    def check(value: str) -> tuple[Any, str | None]:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None, "must be a number"
        if not math.isfinite(number) or not check_range(number):
            return None, f"must be {rule}"
        return number, None

    return check


def _one_of(*choices: str) -> Check:
    def check(value: str) -> tuple[Any, str | None]:
        return (value, None) if value in choices else (None, f"must be one of [{', '.join(choices)}]")

    return check


def _any(value: str) -> tuple[Any, str | None]:
    return value, None


@dataclass(frozen=True)
class AlgorithmRule:
    service: str  # which Katib suggestion service runs it (stock katib-config)
    settings: dict[str, Check] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    extra: Callable[[Experiment, dict[str, Any]], list[Problem]] | None = None
    open_settings: bool = False  # NAS services take many settings; not mirrored here


_ALGO = "spec.algorithm"


def _continuous(exp: Experiment) -> int:
    return sum(1 for p in exp.parameters if p.parameter_type in ("double", "int"))


def _cmaes(exp: Experiment, settings: dict[str, Any]) -> list[Problem]:
    if _continuous(exp) < 2:
        return [
            Problem(
                f"{_ALGO}.algorithmName",
                "cmaes",
                "CMA-ES needs two or more double/int parameters; add one or use tpe",
            )
        ]
    return []


def grid_values(parameter) -> list[Any] | None:
    """Katib's grid (``convert_to_combinations``) for one parameter: an int range by its step (default 1),
    a double min..max by its (required) step, or the list. None when the bounds do not parse."""
    fs = parameter.feasible_space
    try:
        if parameter.parameter_type == "int":
            step = int(fs.step) if fs.step else 1
            return list(range(int(fs.min), int(fs.max) + 1, step)) if step > 0 else None
        if parameter.parameter_type == "double":
            step = float(fs.step)
            low, high = float(fs.min), float(fs.max)
            if step <= 0 or not math.isfinite(step):
                return None
            count = math.floor((high - low) / step + 1e-9) + 1
            # 12 significant digits so 0.1 + 2 * 0.1 reads "0.3", not "0.30000000000000004".
            return [float(f"{low + i * step:.12g}") for i in range(count)]
    except (TypeError, ValueError, OverflowError):
        return None
    return list(fs.list)


def _grid(exp: Experiment, settings: dict[str, Any]) -> list[Problem]:
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
        values = grid_values(p)
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


def hyperband_eta(settings: dict[str, Any]) -> float:
    """Katib's eta: the setting, or 3 when absent or not positive (its own fallback)."""
    eta = settings.get("eta")
    return 3.0 if eta is None or eta <= 0 else float(eta)


def hyperband_s_max(r_l: float, eta: float) -> int:
    return int(math.log(r_l) / math.log(eta))


def _hyperband(exp: Experiment, settings: dict[str, Any]) -> list[Problem]:
    problems = []
    r_l, eta = settings["r_l"], hyperband_eta(settings)
    need = math.ceil(eta ** hyperband_s_max(r_l, eta))
    if exp.parallel_trial_count is not None and exp.parallel_trial_count < need:
        problems.append(
            Problem(
                "spec.parallelTrialCount",
                exp.parallel_trial_count,
                f"hyperband with r_l={r_l:g} and eta={eta:g} needs parallelTrialCount >= {need}; "
                "raise parallelTrialCount or lower r_l",
            )
        )
    resource = settings["resource_name"]
    names = [p.name for p in exp.parameters]
    if resource not in names:
        problems.append(
            Problem(
                f"{_ALGO}.algorithmSettings",
                resource,
                f"hyperband resource_name must be one of the parameters [{', '.join(names)}]",
            )
        )
    else:
        kind = exp.parameter(resource).parameter_type
        if kind not in ("int", "double"):
            problems.append(
                Problem(
                    f"{_ALGO}.algorithmSettings",
                    resource,
                    f"hyperband's resource parameter carries the budget (an integer it assigns), so it must be "
                    f"int or double; {resource!r} is {kind}",
                )
            )
    return problems


def _pbt(exp: Experiment, settings: dict[str, Any]) -> list[Problem]:
    if exp.resume_policy != "FromVolume":
        return [
            Problem(
                "spec.resumePolicy",
                exp.resume_policy,
                "pbt keeps its population's checkpoints on the suggestion volume; set resumePolicy: FromVolume",
            )
        ]
    return []


_RANDOM_STATE = _int(0, MAX_RANDOM_STATE)
# Hyperband writes its bracket state back into the settings (HyperBandParam.generate); Katib reads it back on
# the next request. Accepted so an exported running experiment still validates; the local backend keeps that
# state in its study instead and ignores these.
HYPERBAND_STATE = ("b_l", "n", "r", "s_max", "current_s", "current_i", "evaluating_trials")
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
        "optuna", {"n_startup_trials": _int(0), "n_ei_candidates": _int(1), "random_state": _RANDOM_STATE}
    ),
    "cmaes": AlgorithmRule(
        "goptuna",
        {
            "random_state": _RANDOM_STATE,
            "sigma": _float(lambda x: x > 0, "> 0"),
            "restart_strategy": _one_of("none", "ipop", "bipop"),
        },
        extra=_cmaes,
    ),
    "sobol": AlgorithmRule("goptuna", {"random_state": _RANDOM_STATE}),
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
            "r_l": _float(
                lambda x: x >= 1, ">= 1 (the most budget one trial gets; below 1 every trial gets 0)"
            ),
            "eta": _float(lambda x: x <= 0 or x >= 2, ">= 2 (eta = 1 divides by log(1) = 0)"),
            "random_state": _RANDOM_STATE,
            **{k: _float(lambda x: True, "a number") for k in HYPERBAND_STATE},
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
    exp: Experiment | None, path: str, name: str, settings, registry: dict[str, AlgorithmRule], what: str
) -> tuple[dict[str, Any], list[Problem]]:
    """(the parsed settings by name, every problem). The values are only meaningful without problems."""
    rule = registry.get(name)
    if rule is None:
        return {}, [
            Problem(f"{path}.algorithmName", name, f"must be one of [{', '.join(registry)}]; got: {name}")
        ]
    problems = []
    parsed: dict[str, Any] = {}
    for i, setting in enumerate(settings):
        s_path = f"{path}.algorithmSettings[{i}]"
        if setting.name in parsed:
            problems.append(Problem(f"{s_path}.name", setting.name, "duplicate setting; keep one"))
            continue
        if rule.open_settings:
            parsed[setting.name] = setting.value
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
        value, error = check(setting.value)
        parsed[setting.name] = value
        if error:
            problems.append(Problem(f"{s_path}.value", setting.value, f"{name} {setting.name} {error}"))
    for key in rule.required:
        if key not in parsed:
            problems.append(
                Problem(f"{path}.algorithmSettings", None, f"{name} requires the setting {key!r}")
            )
    if rule.extra is not None and not problems and exp is not None:
        problems += rule.extra(exp, parsed)
    return parsed, problems


__all__ = [
    "ALGORITHMS",
    "EARLY_STOPPING",
    "HYPERBAND_STATE",
    "MAX_RANDOM_STATE",
    "NAS_ALGORITHMS",
    "AlgorithmRule",
    "check_settings",
    "grid_values",
    "hyperband_eta",
    "hyperband_s_max",
]
