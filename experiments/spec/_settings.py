"""Typed, validated algorithm and early-stopping settings: what the backends consume.

Katib keeps ``algorithmSettings`` as a list of ``{name, value}`` strings. They are parsed here, once, by the
same checks that ``validate`` reports (``_algorithms``), into frozen objects with one typed field per
setting; ``None`` means "not set: the algorithm's own default". A backend never reads the raw strings and
never re-validates them: given an experiment that does not validate, :func:`algorithm_settings` raises
the spec's own :class:`InvalidExperimentError`.

    from experiments.spec import algorithm_settings
    settings = algorithm_settings(exp)          # AlgorithmSettings(name="tpe", gamma=0.3, ...)
    if settings.hyperband: settings.hyperband.resource_name
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from experiments.spec._algorithms import (
    ALGORITHMS,
    EARLY_STOPPING,
    check_settings,
    hyperband_eta,
    hyperband_s_max,
)
from experiments.spec._errors import InvalidExperimentError, Problem
from experiments.spec._model import EarlyStopping, Experiment


@dataclass(frozen=True)
class HyperbandSettings:
    """Katib's hyperband: ``resource_name`` (the parameter carrying the budget), ``r_l`` (the most budget
    one trial gets), ``eta`` (Katib's fallback 3 applied), ``s_max = int(log(r_l) / log(eta))``."""

    resource_name: str
    r_l: float
    eta: float
    s_max: int


@dataclass(frozen=True)
class AlgorithmSettings:
    """``spec.algorithm`` parsed. Fields not used by ``name`` stay None."""

    name: str
    random_state: int | None = None
    # tpe (n_EI_candidates), multivariate-tpe (n_ei_candidates, n_startup_trials)
    gamma: float | None = None
    prior_weight: float | None = None
    n_ei_candidates: int | None = None
    n_startup_trials: int | None = None
    # cmaes
    sigma: float | None = None
    restart_strategy: str | None = None
    # bayesianoptimization (skopt names)
    base_estimator: str | None = None
    n_initial_points: int | None = None
    acq_func: str | None = None
    acq_optimizer: str | None = None
    hyperband: HyperbandSettings | None = None
    # Every setting as parsed, by its Katib name (pbt and the NAS algorithms keep their strings here).
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MedianStopSettings:
    """Katib's medianstop with its defaults (min_trials_required 3, start_step 4)."""

    name: str = "medianstop"
    min_trials_required: int = 3
    start_step: int = 4


# Katib setting name -> AlgorithmSettings field (where the two differ).
_FIELD = {"n_EI_candidates": "n_ei_candidates"}
_TYPED = {
    "random_state",
    "gamma",
    "prior_weight",
    "n_ei_candidates",
    "n_startup_trials",
    "sigma",
    "restart_strategy",
    "base_estimator",
    "n_initial_points",
    "acq_func",
    "acq_optimizer",
}


def parse_algorithm(exp: Experiment) -> tuple[AlgorithmSettings | None, list[Problem]]:
    """(typed settings or None, problems) for ``spec.algorithm``; the settings are None iff problems."""
    name = exp.algorithm.algorithm_name
    if not name:
        return None, [
            Problem("spec.algorithm.algorithmName", None, f"is required; one of [{', '.join(ALGORITHMS)}]")
        ]
    parsed, problems = check_settings(
        exp, "spec.algorithm", name, exp.algorithm.algorithm_settings, ALGORITHMS, "algorithm"
    )
    if problems:
        return None, problems
    typed = {_FIELD.get(k, k): v for k, v in parsed.items() if _FIELD.get(k, k) in _TYPED}
    hyperband = None
    if name == "hyperband":
        eta = hyperband_eta(parsed)
        hyperband = HyperbandSettings(
            parsed["resource_name"], parsed["r_l"], eta, hyperband_s_max(parsed["r_l"], eta)
        )
    return AlgorithmSettings(name=name, hyperband=hyperband, values=dict(parsed), **typed), []


def parse_early_stopping(exp: Experiment) -> tuple[MedianStopSettings | None, list[Problem]]:
    """(typed settings, problems) for ``spec.earlyStopping``; (None, []) when the experiment has none."""
    return parse_early_stopping_spec(exp.early_stopping)


def parse_early_stopping_spec(
    es: EarlyStopping | None,
) -> tuple[MedianStopSettings | None, list[Problem]]:
    """:func:`parse_early_stopping` for the ``earlyStopping`` block alone (its rules need nothing else)."""
    if es is None:
        return None, []
    if not es.algorithm_name:
        return None, [Problem("spec.earlyStopping.algorithmName", None, "is required; e.g. medianstop")]
    parsed, problems = check_settings(
        None, "spec.earlyStopping", es.algorithm_name, es.algorithm_settings, EARLY_STOPPING, "early stopping"
    )
    if problems:
        return None, problems
    return MedianStopSettings(name=es.algorithm_name, **parsed), []


def _or_raise(exp: Experiment, result: tuple[Any, list[Problem]]) -> Any:
    settings, problems = result
    if problems:
        raise InvalidExperimentError(repr(exp.name), problems)
    return settings


def algorithm_settings(exp: Experiment) -> AlgorithmSettings:
    """The typed ``spec.algorithm`` of the defaulted experiment (hyperband's parallelTrialCount rule needs
    Katib's default); raises :class:`InvalidExperimentError` with the spec's problems."""
    from experiments.spec._defaults import apply_defaults

    return _or_raise(exp, parse_algorithm(apply_defaults(exp)))


def early_stopping_settings(exp: Experiment) -> MedianStopSettings | None:
    """The typed ``spec.earlyStopping`` (None: no early stopping); raises like :func:`algorithm_settings`."""
    return _or_raise(exp, parse_early_stopping(exp))


__all__ = [
    "AlgorithmSettings",
    "HyperbandSettings",
    "MedianStopSettings",
    "algorithm_settings",
    "early_stopping_settings",
    "parse_algorithm",
    "parse_early_stopping",
    "parse_early_stopping_spec",
]
