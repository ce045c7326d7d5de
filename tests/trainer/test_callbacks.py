"""The trainer's own accuracy and macro-F1 (numpy) against scikit-learn, and the divergence check."""

from __future__ import annotations

import io
import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score

from trainer.callbacks import KatibMetricsCallback, compute_metrics, macro_f1


def _prediction(predicted: np.ndarray, labels: np.ndarray) -> SimpleNamespace:
    # What preprocess_logits_for_metrics hands compute_metrics: (argmax, per-row loss), then the labels.
    losses = np.linspace(0.5, 1.5, len(labels))
    return SimpleNamespace(predictions=(predicted, losses), label_ids=labels)


@pytest.mark.parametrize("seed", range(20))
def test_accuracy_and_macro_f1_equal_scikit_learn_on_random_labels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    # Some seeds leave classes out of one side or both: zero_division=0 and the union of classes matter.
    n_classes = int(rng.integers(2, 11))
    labels = rng.integers(0, n_classes, n)
    predicted = np.where(rng.random(n) < 0.4, labels, rng.integers(0, 10, n))
    metrics = compute_metrics(_prediction(predicted, labels))
    assert metrics["accuracy"] == pytest.approx(accuracy_score(labels, predicted), abs=1e-12)
    assert metrics["f1"] == pytest.approx(
        f1_score(labels, predicted, average="macro", zero_division=0), abs=1e-12
    )
    assert metrics["loss"] == pytest.approx(1.0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=60),
)
def test_macro_f1_equals_scikit_learn_for_any_pairs(pairs: list[tuple[int, int]]) -> None:
    labels = np.array([t for t, _ in pairs])
    predicted = np.array([p for _, p in pairs])
    expected = f1_score(labels, predicted, average="macro", zero_division=0)
    assert macro_f1(labels, predicted) == pytest.approx(expected, abs=1e-12)


def test_perfect_and_hopeless_predictions() -> None:
    labels = np.arange(10).repeat(3)
    assert macro_f1(labels, labels) == 1.0
    assert macro_f1(labels, (labels + 1) % 10) == 0.0


def _evaluate(callback: KatibMetricsCallback, step: int, metrics: dict[str, float], rank0: bool = True):
    state = SimpleNamespace(epoch=step / 10, global_step=step, is_world_process_zero=rank0)
    control = SimpleNamespace(should_training_stop=False)
    callback.on_evaluate(None, state, control, metrics=metrics)
    return control


def test_nan_evaluation_prints_its_line_and_stops_training_on_every_rank() -> None:
    stream = io.StringIO()
    rank0 = KatibMetricsCallback(None, stream=stream)
    finite = {"eval_loss": 2.1, "eval_accuracy": 0.1, "eval_f1": 0.05}
    assert not _evaluate(rank0, 1, finite).should_training_stop
    diverged = {"eval_loss": math.nan, "eval_accuracy": 0.1, "eval_f1": 0.02}
    assert _evaluate(rank0, 2, diverged).should_training_stop
    assert rank0.diverged == (2, "eval_loss", pytest.approx(math.nan, nan_ok=True))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].endswith(
        " epoch=0.2 step=2 eval_loss=nan eval_accuracy=0.1 eval_f1=0.02"
    )
    # Another rank sees the same gathered metrics: it stops too, and prints nothing.
    other_stream = io.StringIO()
    other = KatibMetricsCallback(None, stream=other_stream)
    assert _evaluate(other, 2, diverged, rank0=False).should_training_stop
    assert other.diverged is not None and other_stream.getvalue() == ""


def test_infinite_train_loss_counts_as_divergence() -> None:
    callback = KatibMetricsCallback(None, stream=io.StringIO())
    callback.on_log(None, None, None, logs={"loss": math.inf})
    assert _evaluate(callback, 5, {"eval_loss": 3.0}).should_training_stop
    assert callback.diverged == (5, "train_loss", math.inf)
