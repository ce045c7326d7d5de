"""An in-memory Optuna study made from an experiment's rows, so ``optuna.visualization`` can draw it.

Local and cluster experiments alike: the rows come from the backend protocol, not from the local
backend's own storage. Katib's semantics carry over as the local backend tells Optuna (Suggester.tell):
Succeeded and EarlyStopped trials with an objective value are COMPLETE, a running one RUNNING, the rest
FAIL. Each objective report becomes an intermediate value at its step (1, 2, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timezone
from typing import Any

from experiments.backends._protocol import TRIAL_EARLY_STOPPED, TRIAL_RUNNING, TRIAL_SUCCEEDED
from experiments.compare._rows import ExperimentView, TrialRow
from experiments.spec import Parameter


def _distribution(parameter: Parameter, observed: list[str]):
    """Katib parameter -> Optuna distribution (the local backend's rule), widened to hold what trials got:
    a resumed experiment may have run values from an earlier search space."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from experiments.backends.local._suggest import _distribution as katib_distribution

    try:
        base = katib_distribution(parameter)
    except Exception:  # a space Optuna cannot sample (grid-only step on a log scale): draw as categorical
        base = CategoricalDistribution(tuple(dict.fromkeys(observed)) or ("",))
    if isinstance(base, CategoricalDistribution):
        return CategoricalDistribution(tuple(dict.fromkeys([*base.choices, *observed])))
    numbers = [float(v) for v in observed if _is_number(v)]
    low, high = min([base.low, *numbers]), max([base.high, *numbers])
    if isinstance(base, IntDistribution):
        step_ok = all(float(v).is_integer() and (int(float(v)) - base.low) % base.step == 0 for v in observed)
        return IntDistribution(int(low), int(high), log=base.log, step=base.step if step_ok else 1)
    step = base.step if base.step is not None and low == base.low and high == base.high else None
    return FloatDistribution(low, high, log=base.log and low > 0, step=step)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def distributions(view: ExperimentView) -> dict[str, Any]:
    out = {}
    by_name: Mapping[str, Parameter] = {p.name: p for p in view.experiment.parameters}
    for name in view.parameter_names:
        observed = [r.parameters[name] for r in view.rows if name in r.parameters]
        parameter = by_name.get(name)
        if parameter is None:
            from optuna.distributions import CategoricalDistribution

            out[name] = CategoricalDistribution(tuple(dict.fromkeys(observed)) or ("",))
        else:
            out[name] = _distribution(parameter, observed)
    return out


def _value(distribution, text: str):
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return text
    if isinstance(distribution, IntDistribution):
        return int(float(text))
    return float(text)


def _naive(moment):
    # Optuna keeps naive local datetimes; plot_timeline compares them with datetime.now().
    return None if moment is None else moment.astimezone(timezone.utc).astimezone().replace(tzinfo=None)


def frozen_trial(row: TrialRow, number: int, dists: Mapping[str, Any]):
    from optuna.trial import FrozenTrial, TrialState

    complete = row.condition in (TRIAL_SUCCEEDED, TRIAL_EARLY_STOPPED) and row.objective_value is not None
    if complete:
        state = TrialState.COMPLETE
    elif row.condition == TRIAL_RUNNING:
        state = TrialState.RUNNING
    else:
        state = TrialState.FAIL
    params = {k: _value(dists[k], v) for k, v in row.parameters.items() if k in dists}
    start = _naive(row.start_time)
    end = _naive(row.completion_time) if state != TrialState.RUNNING else None
    if state != TrialState.RUNNING and start is not None and end is None:
        end = start
    return FrozenTrial(
        number=number,
        state=state,
        value=row.objective_value if complete else None,
        values=None,
        datetime_start=start,
        datetime_complete=end,
        params=params,
        distributions={k: dists[k] for k in params},
        user_attrs={"katib_trial": row.trial, "condition": row.condition, "status": row.status},
        system_attrs={},
        intermediate_values={
            step: value for step, value in enumerate(row.curve, start=1) if value is not None
        },
        trial_id=number,
    )


def study_of(view: ExperimentView):
    """A new in-memory study holding the view's trials in creation order."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=view.name, direction=view.objective.type)
    dists = distributions(view)
    study.add_trials([frozen_trial(row, i, dists) for i, row in enumerate(view.rows)])
    return study
