"""Katib's suggestion algorithms on Optuna: each ``algorithmName`` with Katib's setting names and defaults.

| Katib               | Optuna                                   | settings (Katib name -> Optuna)                         |
|---------------------|------------------------------------------|---------------------------------------------------------|
| random              | RandomSampler                            | random_state -> seed                                    |
| tpe                 | TPESampler (hyperopt's gamma rule)       | gamma, prior_weight, n_EI_candidates, random_state      |
| multivariate-tpe    | TPESampler(multivariate=True)            | n_startup_trials, n_ei_candidates, random_state         |
| grid                | GridSampler over the feasible grid       | random_state                                            |
| cmaes               | CmaEsSampler                             | sigma -> sigma0, restart_strategy, random_state         |
| bayesianoptimization| GPSampler                                | base_estimator (GP only), n_initial_points, acq_func,   |
|                     |                                          | acq_optimizer (Optuna's GP always uses log-EI), random_state |
| sobol               | QMCSampler(qmc_type="sobol")             | random_state (scrambles the sequence)                   |
| hyperband           | random configurations + Katib's brackets | resource_name, r_l, eta (see _hyperband.py)             |

Distributions, as Katib's Optuna service maps them: double -> FloatDistribution (``step`` kept), int ->
IntDistribution (step, default 1), discrete and categorical -> CategoricalDistribution of the list's strings.
``logUniform`` -> log scale. Optuna has no normal prior: ``normal`` keeps Katib's support [min, max] (Katib's
hyperopt service centres N(mu, sigma) there with sigma = (max - min) / 6) sampled uniformly, and
``logNormal`` the same on a log scale.

Stateless apart from the study: the sampler is rebuilt before every ask with a seed derived from
``random_state`` and the number of trials already in the study, so a Suggester re-created after a resume
continues the same reproducible sequence (grid and sobol keep ``random_state`` itself: their seed fixes the
order of the whole grid / sequence, and their position is kept in the study).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from experiments.backends._protocol import TRIAL_EARLY_STOPPED, TRIAL_SUCCEEDED
from experiments.backends.local import _hyperband
from experiments.errors import KatibSuiteError
from experiments.spec._algorithms import grid_values
from experiments.spec._local_support import LOCAL_ALGORITHMS, local_problems
from experiments.spec._model import Experiment, Parameter
from experiments.spec._settings import AlgorithmSettings, algorithm_settings

if TYPE_CHECKING:
    import optuna

__all__ = ["ALGORITHMS", "Suggester", "UnsupportedAlgorithmError"]

# The algorithms this backend runs: the spec's list (validate reports the others for the local backend).
ALGORITHMS = LOCAL_ALGORITHMS
HYPERBAND_ATTR = _hyperband.ATTR


class UnsupportedAlgorithmError(KatibSuiteError):
    """A Katib-valid algorithm (or setting) the local backend cannot run; the message names the cluster backend."""


def _hyperopt_gamma(gamma: float, n: int) -> int:
    # hyperopt's TPE split (Katib's tpe runs on hyperopt): ceil(gamma * sqrt(n)) "good" trials, at most 25.
    return min(math.ceil(gamma * math.sqrt(n)), 25)


def _distribution(param: Parameter) -> optuna.distributions.BaseDistribution:
    """Katib's parameter -> Optuna distribution. The spec has validated the bounds (and, for this backend,
    that Optuna can sample them); a failure here would be a disagreement between the two, reported plainly."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space = param.feasible_space
    if param.parameter_type in ("discrete", "categorical"):
        return CategoricalDistribution(tuple(space.list))
    log = space.distribution in ("logUniform", "logNormal")
    step = space.step_value
    try:
        if param.parameter_type == "int":
            return IntDistribution(
                int(space.low), int(space.high), log=log, step=1 if step is None else int(step)
            )
        return FloatDistribution(space.low, space.high, log=log, step=step)
    except (TypeError, ValueError) as exc:
        raise KatibSuiteError(
            f"spec.parameters {param.name!r} ({param.parameter_type}, min={space.min}, max={space.max}): {exc}; "
            "run `katib experiment validate` on the file"
        ) from None


@functools.cache
def _grid_sampler_class() -> type:
    import optuna

    class KatibGridSampler(optuna.samplers.GridSampler):
        """GridSampler whose end is the Suggester's (``ask`` -> None): Optuna's own end calls ``study.stop()``,
        which raises outside ``study.optimize`` and so would break the runner's ``tell`` of the last point."""

        def after_trial(self, study, trial, state, values) -> None:  # type: ignore[override]
            return None

    return KatibGridSampler


class Suggester:
    """Katib's suggestion service for one experiment, over an Optuna study.

    Consumes the spec's typed settings (:func:`experiments.spec.algorithm_settings`) and checks nothing of its
    own: an experiment that does not validate raises the spec's :class:`InvalidExperimentError`, one the local
    backend cannot run raises :class:`UnsupportedAlgorithmError` with the spec's reason."""

    def __init__(self, experiment: Experiment) -> None:
        self.name = experiment.algorithm.algorithm_name
        unsupported = [
            p for p in local_problems(experiment) if p.path.startswith(("spec.algorithm", "spec.parameters"))
        ]
        if unsupported:
            raise UnsupportedAlgorithmError("; ".join(p.message for p in unsupported))
        self.settings: AlgorithmSettings = algorithm_settings(experiment)
        self.experiment = experiment
        self.parameter_types = {p.name: p.parameter_type for p in experiment.parameters}
        self.distributions = {p.name: _distribution(p) for p in experiment.parameters}
        self.random_state = self.settings.random_state
        self.hyperband: _hyperband.Hyperband | None = None
        self._grid: dict[str, list[Any]] | None = None
        self._build = self._builder()
        self.sampler: optuna.samplers.BaseSampler = self._quiet_build(self.random_state)

    # -- algorithm -> sampler --------------------------------------------------------------------------
    def _builder(self) -> Callable[[int | None], optuna.samplers.BaseSampler]:
        import optuna.samplers as samplers

        s = self.settings
        if self.name in ("random", "hyperband"):
            if s.hyperband is not None:
                maximize = self.experiment.objective.type == "maximize"
                hb = s.hyperband
                self.hyperband = _hyperband.Hyperband(hb.resource_name, hb.r_l, hb.eta, maximize)
            return lambda seed: samplers.RandomSampler(seed=seed)
        if self.name == "tpe":
            prior = 1.0 if s.prior_weight is None else s.prior_weight
            n_ei = s.n_ei_candidates or 24
            # Katib's hyperopt service samples its first request (parallelTrialCount trials) at random.
            startup = self.experiment.parallel_trial_count or 3
            gamma_fn = functools.partial(_hyperopt_gamma, 0.25 if s.gamma is None else s.gamma)
            return lambda seed: samplers.TPESampler(
                seed=seed, gamma=gamma_fn, prior_weight=prior, n_ei_candidates=n_ei, n_startup_trials=startup
            )
        if self.name == "multivariate-tpe":
            startup = 10 if s.n_startup_trials is None else s.n_startup_trials
            n_ei = s.n_ei_candidates or 24
            return lambda seed: samplers.TPESampler(
                seed=seed, multivariate=True, n_startup_trials=startup, n_ei_candidates=n_ei
            )
        if self.name == "grid":
            self._grid = {p.name: grid_values(p) or [] for p in self.experiment.parameters}
            # The seed shuffles the grid order (grid_id -> point), so it must stay fixed across asks.
            grid, fixed = self._grid, self.random_state
            return lambda seed: _grid_sampler_class()(grid, seed=fixed)
        if self.name == "cmaes":
            strategy = None if s.restart_strategy in (None, "none") else s.restart_strategy
            sigma = s.sigma
            return lambda seed: samplers.CmaEsSampler(
                seed=seed, sigma0=sigma, restart_strategy=strategy, warn_independent_sampling=False
            )
        if self.name == "bayesianoptimization":
            # Optuna's GPSampler always uses log-EI: acq_func / acq_optimizer are validated, not mapped.
            startup = 10 if s.n_initial_points is None else s.n_initial_points
            return lambda seed: samplers.GPSampler(
                seed=seed, n_startup_trials=startup, warn_independent_sampling=False
            )
        # sobol: the scramble seed must stay fixed, or the sequence would restart with every ask.
        fixed = self.random_state
        return lambda seed: samplers.QMCSampler(qmc_type="sobol", scramble=fixed is not None, seed=fixed)

    # -- ask / tell --------------------------------------------------------------------------------------
    def _reseed(self, study: optuna.Study) -> None:
        n = len(study.get_trials(deepcopy=False))
        seed = None if self.random_state is None else (self.random_state * 1_000_003 + n) % 2**32
        self.sampler = self._quiet_build(seed)
        study.sampler = self.sampler

    def _quiet_build(self, seed: int | None) -> optuna.samplers.BaseSampler:
        # Katib's settings map onto TPE's gamma / prior_weight (deprecated in Optuna 4.9, still honoured) and
        # onto experimental samplers; the warnings say nothing a Katib user can act on.
        import warnings

        from optuna.exceptions import ExperimentalWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", ExperimentalWarning)
            return self._build(seed)

    def grid_size(self) -> int | None:
        return None if self._grid is None else math.prod(len(v) for v in self._grid.values())

    def done(self, study: optuna.Study) -> bool:
        """True when the algorithm has nothing more to suggest, ever (Katib's ExperimentSuggestionEndReached once
        no trial runs). ``ask`` also returns None while hyperband waits for a rung to finish; then this is False."""
        if self._grid is not None:
            seen = {t.system_attrs.get("grid_id") for t in study.get_trials(deepcopy=False)}
            return len(seen - {None}) >= (self.grid_size() or 0)
        if self.hyperband is not None:
            return self.hyperband.next_params(study) is False
        return False

    def ask(self, study: optuna.Study) -> tuple[optuna.trial.Trial, dict[str, str]] | None:
        """The next trial and its Katib assignments (strings), or None when there is nothing to run now."""
        from optuna.trial import TrialState

        if self._grid is not None and self.done(study):
            return None
        if self.hyperband is not None:
            waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if not waiting:  # a WAITING trial is one this schedule enqueued before a crash: run it first
                nxt = self.hyperband.next_params(study)
                if not nxt:
                    return None
                params, place = nxt
                study.enqueue_trial(params, user_attrs={HYPERBAND_ATTR: place})
        self._reseed(study)
        trial = study.ask(fixed_distributions=self.distributions)
        return trial, self.assignments(trial.params)

    def assignments(self, params: Mapping[str, Any]) -> dict[str, str]:
        """Optuna params -> the strings Katib passes to the trial (``${trialParameters.x}``)."""
        out: dict[str, str] = {}
        for name, value in params.items():
            kind = self.parameter_types.get(name)
            if self.hyperband is not None and name == self.hyperband.resource_name:
                out[name] = str(int(value))  # Katib's hyperband passes the budget as an integer string
            elif kind == "int":
                out[name] = str(int(value))
            elif kind == "double":
                out[name] = repr(
                    float(value)
                )  # Python's shortest repr: "2.3e-05", as Katib's Python services
            else:
                out[name] = str(value)
        return out

    def tell(self, study: optuna.Study, trial: Any, value: float | None, condition: str) -> None:
        """Record a finished trial. Succeeded or EarlyStopped with a value -> COMPLETE (Katib's services receive
        early-stopped trials with their objective value too); anything else -> FAIL. Idempotent."""
        from optuna.trial import FrozenTrial, TrialState

        if isinstance(trial, FrozenTrial):
            trial = trial.number
        if (
            condition in (TRIAL_SUCCEEDED, TRIAL_EARLY_STOPPED)
            and value is not None
            and not math.isnan(value)
        ):
            study.tell(trial, value, state=TrialState.COMPLETE, skip_if_finished=True)
        else:
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
