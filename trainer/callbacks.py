"""Hugging Face Trainer pieces: the Katib metric-line callback, metrics, and a Trainer that counts samples."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from transformers import Trainer, TrainerCallback

from trainer.reporting import format_metric_line

EVAL_KEYS = ("eval_loss", "eval_accuracy", "eval_f1")


def compute_metrics(prediction: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    (predicted, row_losses), labels = prediction.predictions, prediction.label_ids
    return {
        # Becomes eval_loss: the mean over the rows gather_for_metrics kept, i.e. each eval row exactly once.
        "loss": float(row_losses.mean()),
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1": float(f1_score(labels, predicted, average="macro", zero_division=0)),
    }


def logits_to_predictions(logits: Any, labels: Any) -> Any:
    """(argmax, per-row cross-entropy): gathering [N, 10] logits across ranks is wasted traffic."""
    import torch.nn.functional as F

    return logits.argmax(dim=-1), F.cross_entropy(logits.float(), labels, reduction="none")


class KatibMetricsCallback(TrainerCallback):
    """Rank 0 prints one Katib metric line per evaluation (stdout, flushed) and appends it to a file."""

    def __init__(self, metrics_file: str | None, stream: Any = None) -> None:
        self.metrics_file = Path(metrics_file) if metrics_file else None
        self.stream = stream
        self.history: list[dict[str, float]] = []
        self.last_train_loss: float | None = None
        if self.metrics_file is not None:
            self.metrics_file.parent.mkdir(parents=True, exist_ok=True)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.last_train_loss = float(logs["loss"])

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not state.is_world_process_zero or not metrics:
            return
        record: dict[str, float] = {
            "epoch": round(float(state.epoch or 0.0), 4),
            "step": int(state.global_step),
        }
        if self.last_train_loss is not None:
            record["train_loss"] = round(self.last_train_loss, 6)
        record.update({key: round(float(metrics[key]), 6) for key in EVAL_KEYS if key in metrics})
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = False
        self.samples_seen = 0
        self.eval_seconds = 0.0
        self.last_eval_step = -1

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
