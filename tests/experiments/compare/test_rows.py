"""Rows from experiments the local backend ran: every trial condition, the resumed trial, compute."""

from __future__ import annotations

import pytest

import experiments
from experiments.compare import load
from experiments.ranking import optimal_trial

pytestmark = pytest.mark.slow  # the session fixture runs real (stand-in) trials


def test_rows_say_what_happened_to_each_trial(runs):
    (view,) = load(["cmp-a"], storage=runs.storage, workdir=runs.workdir)
    statuses = [(r.condition, r.status) for r in view.rows]
    assert statuses == [
        ("Succeeded", "Succeeded"),
        ("Succeeded", "Succeeded"),
        ("EarlyStopped", "EarlyStopped at step 2"),
        ("MetricsUnavailable", "MetricsUnavailable"),
        ("Failed", "Failed"),
        ("Succeeded", "Succeeded"),  # run by resume
    ]
    rows = {r.condition: r for r in view.rows}
    assert "reported no value of 'accuracy'" in rows["MetricsUnavailable"].detail
    # The runner's message ends with the log's last lines; the row keeps the trainer's own last line.
    assert rows["Failed"].detail == (
        "replica master-0 exited with code 1: standin: failing on purpose with exit code 1"
    )
    assert rows["EarlyStopped"].curve == (0.1, 0.1)
    # The best row is experiments.ranking's optimal trial: the resumed one, by max over its reports.
    best = optimal_trial(view.records, view.objective)
    assert [r.trial for r in view.rows if r.best] == [best.name] == [view.rows[-1].trial]
    assert view.rows[-1].objective == "0.97" and view.rows[-1].objective_value == 0.97
    assert [r.rank for r in view.rows] == [3, 2, 4, None, None, 1]
    for row in view.rows:
        assert row.processes == 1 and row.duration_s is not None and row.duration_s > 0


def test_trial_seconds_count_every_process_and_the_api_returns_plain_rows(runs):
    rows = experiments.compare(["cmp-a", "cmp-b"], storage=runs.storage, workdir=runs.workdir)
    assert [r.experiment for r in rows] == ["cmp-a"] * 6 + ["cmp-b"] * 3
    for row in rows[6:]:
        assert row.processes == 2  # Master + 1 Worker
        assert row.trial_seconds == pytest.approx(2 * row.duration_s)
        assert set(row.parameters) == {"lr", "tag", "batch_size"}
    document = rows[0].to_dict()
    assert document["parameters"]["tag"] == "a;touch PWNED" and isinstance(document["start_time"], str)
