"""Katib's ``hyperband`` suggestion, with every bit of its state kept in the Optuna study.

Source: kubeflow/katib pkg/suggestion/v1beta1/hyperband/service.py. Settings: ``resource_name`` (a parameter
whose value is the budget a trial gets, e.g. epochs), ``r_l`` (the most budget one trial gets), ``eta``
(default 3). With ``s_max = int(log(r_l) / log(eta))`` Katib runs brackets ``s = s_max .. 0``; bracket ``s``
starts ``n = ceil((s_max + 1) * eta**s / (s + 1))`` random configurations with budget ``int(r_l * eta**-s)``;
rung ``i >= 1`` promotes the best ``ceil(ceil(n * eta**-(i-1)) / eta)`` trials of rung ``i - 1`` (by the
objective) with budget ``int(r_l * eta**-s * eta**i)``.

Its settings arrive parsed and validated by the spec (``experiments.spec.HyperbandSettings``); nothing is
checked again here. Each Optuna trial carries its place in that schedule (user attribute ``katib_hyperband``), so a new
:class:`Hyperband` over the same study (after a resume) continues where the last one stopped. Two choices
where Katib's service is undefined: a rung is promoted once every trial of the previous rung has finished
(Katib raises until then, and its controller retries), and failed trials rank below every succeeded one
(Katib would crash on them). Katib also overrides ``n`` with the controller's request size; here ``n`` is
the schedule's own, which is what Katib's ``parallelTrialCount >= eta**s_max`` rule is sized for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

ATTR = "katib_hyperband"


@dataclass(frozen=True)
class Rung:
    bracket: int  # s
    rung: int  # i
    size: int  # trials in this rung
    resource: int  # the resource parameter's value for them


def schedule(r_l: float, eta: float) -> list[Rung]:
    """Every rung of every bracket, in the order Katib runs them."""
    s_max = int(math.log(r_l) / math.log(eta))
    rungs: list[Rung] = []
    for s in range(s_max, -1, -1):
        n = math.ceil(float(s_max + 1) * (float(eta**s) / float(s + 1)))
        r = r_l * eta ** (-s)
        rungs.append(Rung(s, 0, n, int(r)))
        for i in range(1, s + 1):
            n_prev = math.ceil(n * eta ** (-(i - 1)))
            rungs.append(Rung(s, i, math.ceil(n_prev / eta), int(r * eta**i)))
    return rungs


def _place(trial: optuna.trial.FrozenTrial) -> tuple[int, int] | None:
    attr = trial.user_attrs.get(ATTR)
    return None if attr is None else (attr["bracket"], attr["rung"])


class Hyperband:
    """Katib's hyperband over an Optuna study (its sampler draws the rung-0 configurations)."""

    def __init__(self, resource_name: str, r_l: float, eta: float, maximize: bool) -> None:
        self.resource_name = resource_name
        self.rungs = schedule(r_l, eta)
        self.maximize = maximize

    def next_params(self, study: optuna.Study) -> tuple[dict[str, Any], dict[str, int]] | bool | None:
        """What the next trial should be: (fixed params, place); None when nothing can start until running trials
        finish; False when the schedule is done."""

        trials = study.get_trials(deepcopy=False)
        by_place: dict[tuple[int, int], list[optuna.trial.FrozenTrial]] = {}
        for t in trials:
            place = _place(t)
            if place is not None:
                by_place.setdefault(place, []).append(t)
        for rung in self.rungs:
            members = by_place.get((rung.bracket, rung.rung), [])
            if len(members) >= rung.size:
                continue
            place = {"bracket": rung.bracket, "rung": rung.rung}
            if rung.rung == 0:
                return {self.resource_name: rung.resource}, place
            previous = by_place.get((rung.bracket, rung.rung - 1), [])
            if any(not t.state.is_finished() for t in previous):
                return None
            promoted = {t.user_attrs[ATTR].get("parent") for t in members}
            ranked = sorted(previous, key=self._rank_key)
            candidates = [t for t in ranked if t.number not in promoted]
            if not candidates:
                continue
            parent = candidates[0]
            params = dict(parent.params)
            params[self.resource_name] = rung.resource
            return params, place | {"parent": parent.number}
        return False

    def _rank_key(self, trial: optuna.trial.FrozenTrial) -> tuple[int, float, int]:
        from optuna.trial import TrialState

        if trial.state != TrialState.COMPLETE or trial.value is None or math.isnan(trial.value):
            return (1, 0.0, trial.number)
        return (0, -trial.value if self.maximize else trial.value, trial.number)
