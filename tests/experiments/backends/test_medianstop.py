"""medianstop with Katib's exact rule: the mean of the succeeded trials' first-start_step averages, checked
once, at the start_step-th report, on the trial's best value so far."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from experiments.backends._protocol import Observation, TrialRecord
from experiments.backends.local._medianstop import EARLY_STOPPING, MedianStop, make_early_stopping
from experiments.errors import KatibSuiteError
from experiments.spec._model import EarlyStopping, Objective, Setting

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
MAX = Objective(type="maximize", objective_metric_name="acc")
MIN = Objective(type="minimize", objective_metric_name="loss")


def es(**settings):
    return EarlyStopping("medianstop", tuple(Setting(k, str(v)) for k, v in settings.items()))


def trial(name, values, condition="Succeeded", metric="acc", times=None):
    times = times if times is not None else range(len(values))
    return TrialRecord(
        name,
        {},
        condition,
        observations=tuple(
            Observation(metric, str(v), None if t is None else T0 + timedelta(seconds=t))
            for v, t in zip(values, times, strict=True)
        ),
    )


def reports_until_stop(rule, values):
    """1-based index of the report at which the rule stops the trial, else None."""
    for i, value in enumerate(values, start=1):
        if rule.observe(value):
            return i
    return None


def test_defaults_and_no_rule_before_min_trials():
    ms = make_early_stopping(es(), MAX)
    assert (ms.min_trials_required, ms.start_step) == (3, 4)
    done = [trial("a", [0.5] * 4), trial("b", [0.5] * 4)]
    assert ms.rule(done) is None
    # failed, early-stopped and killed trials do not count towards min_trials_required
    others = [
        trial(c, [0.9] * 4, condition=c) for c in ("Failed", "EarlyStopped", "Killed", "MetricsUnavailable")
    ]
    assert ms.rule(done + others) is None
    assert ms.rule([*done, trial("c", [0.5] * 4)]) is not None


def test_median_is_mean_of_first_start_step_averages_in_time_order():
    ms = make_early_stopping(es(min_trials_required=2, start_step=2), MAX)
    a = trial("a", [0.9, 0.1, 0.3], times=[5, 1, 3])  # by time: 0.1, 0.3, 0.9 -> first two avg 0.2
    b = trial("b", [0.4, 0.6, 1.0])  # avg 0.5
    assert ms.median([a, b]) == pytest.approx(0.35)  # mean of 0.2 and 0.5, not a true median
    c = trial("c", [0.8, 0.8])
    assert ms.median([a, b, c]) == pytest.approx(0.5)  # true median would be 0.5, mean is (0.2+0.5+0.8)/3


@pytest.mark.parametrize(
    ("objective", "values", "expected"),
    [
        # median 0.5, start_step 4, maximize: stop exactly at the 4th report when best-so-far < 0.5
        (MAX, [0.1, 0.2, 0.3, 0.4, 0.45, 0.46], 4),
        # best so far is what counts: 0.6 at report 1 keeps the trial alive even though report 4 is low
        (MAX, [0.6, 0.1, 0.1, 0.1, 0.1], None),
        # equal to the median is not worse
        (MAX, [0.5, 0.5, 0.5, 0.5], None),
        # reports 1-3 far below the median never stop it (not one report earlier)
        (MAX, [0.0, 0.0, 0.0], None),
        # fine at report 4, worse afterwards: never checked again (not one report later)
        (MAX, [0.1, 0.1, 0.1, 0.9, 0.0, 0.0], None),
        # minimize: stop when the best loss so far is greater than the median
        (MIN, [0.9, 0.8, 0.7, 0.6, 0.1], 4),
        (MIN, [0.9, 0.4, 0.7, 0.6], None),
    ],
)
def test_stop_exactly_at_start_step(objective, values, expected):
    metric = objective.objective_metric_name
    ms = make_early_stopping(es(), objective)
    rule = ms.rule([trial(n, [0.5] * 4, metric=metric) for n in "abc"])
    assert rule.median == pytest.approx(0.5)
    assert reports_until_stop(rule, values) == expected


def test_each_trial_gets_its_own_rule():
    ms = make_early_stopping(es(min_trials_required=1, start_step=1), MAX)
    done = [trial("a", [0.5])]
    first, second = ms.rule(done), ms.rule(done)
    assert first.observe(0.1) is True
    assert second.observe(0.9) is False


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"min_trials_required": "0"},
            r"algorithmSettings\[0\].value = '0': medianstop min_trials_required must be >= 1",
        ),
        ({"start_step": "x"}, "medianstop start_step must be an integer"),
        ({"start_step": "1.5"}, "medianstop start_step must be an integer"),
        (
            {"min_trial_required": "3"},
            r"min_trial_required.*must be one of \[min_trials_required, start_step\]",
        ),
    ],
)
def test_bad_settings_are_clear_errors(settings, message):
    with pytest.raises(KatibSuiteError, match=message):
        make_early_stopping(es(**settings), MAX)


def test_registry():
    assert EARLY_STOPPING == {"medianstop": MedianStop}
    assert isinstance(make_early_stopping(es(), MAX), MedianStop)
    with pytest.raises(KatibSuiteError, match=r"must be one of \[medianstop\]; got: asha"):
        make_early_stopping(EarlyStopping("asha"), MAX)
