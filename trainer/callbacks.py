"""Hugging Face Trainer pieces: the Katib metric-line callback, metrics, and a Trainer that counts samples."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

from transformers import Trainer, TrainerCallback

from trainer.reporting import format_metric_line

EVAL_KEYS = ("eval_loss", "eval_accuracy", "eval_f1")


def macro_f1(labels: Any, predicted: Any) -> float:
    """scikit-learn's ``f1_score(average="macro", zero_division=0)``: the mean F1 over every class that
    occurs in ``labels`` or ``predicted``. Computed here because importing scikit-learn costs each trial
    process ~0.5 s; tests/trainer/test_callbacks.py checks it against scikit-learn."""
    import numpy as np

    labels, predicted = np.asarray(labels).ravel(), np.asarray(predicted).ravel()
    classes = np.union1d(labels, predicted)
    if classes.size == 0:
        return 0.0
    true_positive = np.array([np.sum((labels == c) & (predicted == c)) for c in classes], dtype=np.float64)
    support = np.array([np.sum(labels == c) for c in classes], dtype=np.float64)
    guessed = np.array([np.sum(predicted == c) for c in classes], dtype=np.float64)
    denominator = support + guessed  # 2·TP + FP + FN
    scores = np.divide(2 * true_positive, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return float(scores.mean())


def compute_metrics(prediction: Any) -> dict[str, float]:
    import numpy as np

    (predicted, row_losses), labels = prediction.predictions, prediction.label_ids
    return {
        # Becomes eval_loss: the mean over the rows gather_for_metrics kept, i.e. each eval row exactly once.
        "loss": float(row_losses.mean()),
        "accuracy": float(np.mean(np.asarray(labels) == np.asarray(predicted))) if len(labels) else 0.0,
        "f1": macro_f1(labels, predicted),
    }


def logits_to_predictions(logits: Any, labels: Any) -> Any:
    """(argmax, per-row cross-entropy): gathering [N, 10] logits across ranks is wasted traffic."""
    import torch.nn.functional as F

    return logits.argmax(dim=-1), F.cross_entropy(logits.float(), labels, reduction="none")


class KatibMetricsCallback(TrainerCallback):
    """Rank 0 prints one Katib metric line per evaluation (stdout, flushed) and appends it to a file.

    A NaN or infinite loss or metric stops the run on every rank (they all see the same gathered metrics),
    after its line is printed: the collector then records that evaluation as unavailable and the user sees
    it in the log. ``diverged`` says where; the trainer turns it into a one-line error.
    """

    def __init__(self, metrics_file: str | None, stream: Any = None) -> None:
        self.metrics_file = Path(metrics_file) if metrics_file else None
        self.stream = stream
        self.history: list[dict[str, float]] = []
        self.last_train_loss: float | None = None
        self.diverged: tuple[int, str, float] | None = None
        if self.metrics_file is not None:
            self.metrics_file.parent.mkdir(parents=True, exist_ok=True)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.last_train_loss = float(logs["loss"])

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not metrics:
            return
        record: dict[str, float] = {
            "epoch": round(float(state.epoch or 0.0), 4),
            "step": int(state.global_step),
        }
        if self.last_train_loss is not None:
            record["train_loss"] = round(self.last_train_loss, 6)
        record.update({key: round(float(metrics[key]), 6) for key in EVAL_KEYS if key in metrics})
        bad = next(((k, v) for k, v in record.items() if not math.isfinite(v)), None)
        if bad is not None and self.diverged is None:
            self.diverged = (int(state.global_step), *bad)
            control.should_training_stop = True
        if not state.is_world_process_zero:
            return
        self.history.append(record)
        line = format_metric_line(record)
        print(line, file=self.stream or sys.stdout, flush=True)
        if self.metrics_file is not None:
            with self.metrics_file.open("a") as handle:
                handle.write(line + "\n")


class CountingTrainer(Trainer):
    """A Trainer that counts the training rows this rank actually stepped on and the time spent evaluating."""

    # Sequence classification returns a per-micro-batch MEAN loss. transformers 5 would otherwise treat it
    # as already normalised (the model's forward takes **kwargs): it would skip the division by the
    # accumulation steps and multiply by the world size, so the effective learning rate would change with
    # the world size — the opposite of "global batch is the tuned quantity".
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, train_lengths: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.train_lengths = train_lengths
        self.model_accepts_loss_kwargs = False
        self.samples_seen = 0
        self.eval_seconds = 0.0
        self.last_eval_step = -1

    def _get_train_sampler(self, train_dataset=None):
        # With length grouping the Trainer would measure every row in Python (minutes at 1.4M rows);
        # the lengths read from the Arrow column are the same numbers. No public hook takes them.
        if self.args.train_sampling_strategy != "group_by_length" or self.train_lengths is None:
            return super()._get_train_sampler(train_dataset)
        from transformers.trainer_pt_utils import LengthGroupedSampler

        batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
        return LengthGroupedSampler(batch, lengths=self.train_lengths)

    def training_step(self, model, inputs, num_items_in_batch=None):
        self.samples_seen += int(inputs["labels"].shape[0])
        return super().training_step(model, inputs, num_items_in_batch)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        # The Trainer's eval_loss weighs each batch's MEAN loss by its size; with several ranks the last batch
        # is padded with repeated rows, which then count in that mean. compute_metrics gives eval_loss from
        # per-row losses instead (duplicates dropped), so the batch loss is not returned.
        _, logits, labels = super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        return None, logits, labels

    def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        started = time.perf_counter()
        try:
            return super().evaluate(*args, **kwargs)
        finally:
            self.eval_seconds += time.perf_counter() - started
            self.last_eval_step = self.state.global_step
