"""Pure parts of compare on hand-made records: metric strategies, ordering, top-k, compute, flag errors."""

from __future__ import annotations

import pytest

from experiments.compare import best_so_far, compute_saved, compute_spent, sort_rows, top_rows
from experiments.compare._table import check_hidden
from experiments.errors import UsageError
from tests.experiments.compare.records import LOSS_MIN, demo_view, record


def three(strategies=()):
    return demo_view(
        [
            record(0, "Succeeded", [0.5, 0.9, 0.6], loss=[0.9, 0.2, 0.4], seconds=40),
            record(1, "Succeeded", [0.7, 0.8], loss=[0.5, 0.3], seconds=20),
            record(2, "EarlyStopped", [0.1], loss=[1.5], seconds=10),
            record(3, "Failed", [], seconds=5, message="replica master-0 exited with code 1: boom\nmore"),
        ],
        workers=1,
        strategies=strategies,
    )


def test_objective_and_metrics_by_their_strategy():
    view = three(strategies=(LOSS_MIN,))
    first = view.rows[0]
    assert (first.objective, first.metrics["loss"]) == ("0.9", "0.2")  # max accuracy, min loss
    # Without a strategy Katib gives additional metrics the objective's direction: max.
    assert three().rows[0].metrics["loss"] == "0.9"
    assert view.rows[3].detail == "replica master-0 exited with code 1: boom"
    assert [r.rank for r in view.rows] == [1, 2, 3, None]


def test_sort_by_a_metric_follows_its_strategy_and_keeps_unranked_last():
    view = three(strategies=(LOSS_MIN,))
    assert [r.number for r in sort_rows(view, "accuracy")] == [1, 2, 3, 4]
    assert [r.number for r in sort_rows(view, "loss")] == [1, 2, 3, 4]  # min loss: 0.2, 0.3, 1.5
    assert [r.number for r in sort_rows(three(), "loss")] == [3, 1, 2, 4]  # max loss: 1.5, 0.9, 0.5
    assert [r.number for r in sort_rows(view, "duration")] == [4, 3, 2, 1]
    assert [r.number for r in sort_rows(view, "lr")] == [1, 2, 3, 4]
    assert [r.number for r in top_rows(view, None, 2)] == [1, 2]
    assert [r.number for r in top_rows(view, "duration", 1)] == [4]


def test_compute_spent_saved_and_best_so_far():
    view = demo_view(
        [
            record(0, "Succeeded", [0.5, 0.6, 0.7, 0.8], seconds=40),
            record(1, "EarlyStopped", [0.1], seconds=10),
            record(2, "Succeeded", [0.9, 0.95, 0.97, 0.99], seconds=40),
        ],
        workers=1,  # Master + Worker: two processes
    )
    assert [r.trial_seconds for r in view.rows] == [80, 20, 80]
    assert compute_spent(view) == 180
    # Stopped after 1 of the 4 reports a full trial makes: 3 more reports at 20 trial-seconds each.
    assert compute_saved(view) == {view.rows[1].trial: pytest.approx(60)}
    assert best_so_far(view) == [(1, 80, 0.8), (2, 100, 0.8), (3, 180, 0.99)]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda v: sort_rows(v, "acc"),
            r"--sort must be one of \['accuracy', 'loss', 'lr', 'tag', 'duration'",
        ),
        (lambda v: top_rows(v, None, 0), "--top must be a positive integer; got: 0"),
        (
            lambda v: check_hidden([v], ["batch"]),
            r"--hide takes a parameter or additional metric name.*got: batch",
        ),
    ],
)
def test_bad_flags_name_the_choices(call, message):
    with pytest.raises(UsageError, match=message):
        call(three())
