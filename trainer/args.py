"""Command-line arguments of ``trainer.train`` as dataclasses (parsed by ``transformers.HfArgumentParser``).

Katib passes ``--name=value``. Cross-field checks live in ``__post_init__`` so a bad value is reported
before any process group, download or tokenization starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from trainer.errors import TrainerInputError

TINY_MODEL = "tiny"
DEFAULT_MODEL = "FacebookAI/roberta-large"


def _default_cache_dir() -> str:
    return os.environ.get("KATIB_SUITE_CACHE") or str(Path.home() / ".cache" / "katib-suite")


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default=DEFAULT_MODEL,
        metadata={
            "help": "Sequence-classification checkpoint: a hub id, a local directory or an s3:// prefix; "
            f"'{TINY_MODEL}' builds a small RoBERTa from a config and trains a byte-level BPE tokenizer "
            "on the training texts (offline)."
        },
    )
    cache_dir: str = field(
        default_factory=_default_cache_dir,
        metadata={
            "help": "Cache for tokenizers, tokenized datasets and downloads, reused across trials "
            "(default: $KATIB_SUITE_CACHE or ~/.cache/katib-suite)."
        },
    )


@dataclass
class DataArguments:
    dataset: str = field(
        default="yahoo_answers_topics",
        metadata={
            "help": "'yahoo_answers_topics' (Hugging Face Hub), 'synthetic' (generated offline), or a local/s3:// "
            "path to a .csv/.jsonl/.parquet file (an eval slice is held out) or a directory/prefix holding "
            "train.* and test.* files, with columns topic, question_title, question_content, best_answer."
        },
    )
    max_seq_length: int = field(default=256, metadata={"help": "Truncate inputs to this many tokens."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many training rows (default: all)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many evaluation rows (default: all)."}
    )

    def __post_init__(self) -> None:
        if not self.dataset:
            raise TrainerInputError("--dataset is empty; pass yahoo_answers_topics, synthetic or a file path")
        if not 8 <= self.max_seq_length <= 512:
            raise TrainerInputError(
                f"--max_seq_length must be between 8 and 512 (RoBERTa has 514 positions); got: {self.max_seq_length}"
            )
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise TrainerInputError(f"--{name} must be a positive number of rows; got: {value}")


@dataclass
class TrainArguments:
    output_dir: str = field(
        default="outputs/trial",
        metadata={"help": "Where the checkpoint and trial.json go: a local path or s3://bucket/prefix/."},
    )
    learning_rate: float = field(default=2e-5, metadata={"help": "Peak learning rate of AdamW."})
    global_batch_size: int = field(
        default=32,
        metadata={
            "help": "Samples per optimizer step across all processes (the tuned quantity); per-device batch "
            "and gradient accumulation are derived from the world size."
        },
    )
    per_device_batch_size: int = field(
        default=16,
        metadata={
            "help": "Largest micro-batch one process holds in memory; gradient accumulation covers the rest."
        },
    )
    warmup_ratio: float = field(
        default=0.06,
        metadata={"help": "Fraction of optimizer steps with linear warmup (0.06 as in RoBERTa)."},
    )
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay."})
    num_train_epochs: float = field(
        default=2.0, metadata={"help": "Training epochs (ignored when --max_steps > 0)."}
    )
    max_steps: int = field(
        default=-1, metadata={"help": "Optimizer steps to run; overrides epochs when > 0."}
    )
    eval_steps: int | None = field(
        default=None,
        metadata={
            "help": "Evaluate (and print a metric line) every N optimizer steps and at the end; default: "
            "5 evaluations spread over the run (Katib's medianstop needs at least start_step=4)."
        },
    )
    seed: int = field(default=42, metadata={"help": "Seed for model init, data order and dropout."})
    bf16: bool = field(default=False, metadata={"help": "bfloat16 mixed precision."})
    fp16: bool = field(default=False, metadata={"help": "float16 mixed precision (CUDA only)."})
    metrics_file: str | None = field(
        default=None,
        metadata={"help": "Also append every metric line to this file (Katib's File collector)."},
    )
    trial_name: str | None = field(
        default_factory=lambda: os.environ.get("KATIB_TRIAL_NAME"),
        metadata={"help": "Trial name recorded in trial.json (default: $KATIB_TRIAL_NAME)."},
    )
    experiment_name: str | None = field(
        default=None, metadata={"help": "Experiment name recorded in trial.json."}
    )

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise TrainerInputError(f"--learning_rate must be > 0, e.g. 2e-5; got: {self.learning_rate}")
        if self.global_batch_size < 1:
            raise TrainerInputError(f"--global_batch_size must be >= 1; got: {self.global_batch_size}")
        if self.per_device_batch_size < 1:
            raise TrainerInputError(
                f"--per_device_batch_size must be >= 1; got: {self.per_device_batch_size}"
            )
        if not 0 <= self.warmup_ratio < 1:
            raise TrainerInputError(f"--warmup_ratio must be in [0, 1); got: {self.warmup_ratio}")
        if self.weight_decay < 0:
            raise TrainerInputError(f"--weight_decay must be >= 0; got: {self.weight_decay}")
        if self.max_steps <= 0 and not self.num_train_epochs > 0:
            raise TrainerInputError(
                f"--num_train_epochs must be > 0 unless --max_steps is set; got: {self.num_train_epochs}"
            )
        if self.eval_steps is not None and self.eval_steps < 1:
            raise TrainerInputError(f"--eval_steps must be >= 1; got: {self.eval_steps}")
        if self.bf16 and self.fp16:
            raise TrainerInputError("--bf16 and --fp16 are exclusive; pass one of them")
        if not self.output_dir:
            raise TrainerInputError("--output_dir is empty; pass a local path or s3://bucket/prefix/")


def split_global_batch(global_batch_size: int, world_size: int, per_device_cap: int) -> tuple[int, int]:
    """(per-device micro-batch, gradient accumulation steps) so that micro * accum * world == global.

    The smallest accumulation whose micro-batch fits under the cap is chosen: fewer, larger steps are faster.
    """
    if global_batch_size % world_size:
        raise TrainerInputError(
            f"--global_batch_size {global_batch_size} cannot be split evenly over {world_size} processes; "
            f"use a multiple of {world_size}"
        )
    per_rank = global_batch_size // world_size
    for accum in range(1, per_rank + 1):
        if per_rank % accum == 0 and per_rank // accum <= per_device_cap:
            return per_rank // accum, accum
    raise AssertionError("unreachable: accum == per_rank always fits")  # micro-batch 1 <= cap
