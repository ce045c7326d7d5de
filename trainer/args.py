"""Command-line arguments of ``trainer.train`` as dataclasses (parsed by ``transformers.HfArgumentParser``).

Katib passes ``--name=value``. Cross-field checks live in ``__post_init__`` so a bad value is reported
before any process group, download or tokenization starts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from trainer.errors import TrainerInputError
from trainer.performance import ATTENTION_IMPLEMENTATIONS, MAX_AUTO_WORKERS, OPTIMIZERS, PRECISIONS

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
    precision: str = field(
        default="auto",
        metadata={
            "help": "Mixed precision: bf16 (autocast), fp16 (autocast + loss scaler, CUDA only) or fp32. "
            "Default: auto = bf16 on a GPU that has it, else fp16 on a GPU, fp32 on CPU.",
            "choices": list(PRECISIONS),
        },
    )
    bf16: bool = field(default=False, metadata={"help": "Shortcut for --precision=bf16."})
    fp16: bool = field(default=False, metadata={"help": "Shortcut for --precision=fp16 (CUDA only)."})
    tf32: bool = field(
        default=True,
        metadata={"help": "TF32 matmuls and convolutions on Ampere or newer GPUs (no effect on CPU)."},
    )
    attn_implementation: str = field(
        default="sdpa",
        metadata={
            "help": "Attention kernel: sdpa (PyTorch scaled_dot_product_attention) or eager.",
            "choices": list(ATTENTION_IMPLEMENTATIONS),
        },
    )
    optim: str = field(
        default="adamw_torch_fused",
        metadata={
            "help": "AdamW implementation: fused (one kernel per step) or not.",
            "choices": list(OPTIMIZERS),
        },
    )
    group_by_length: bool | None = field(
        default=None,
        metadata={
            "help": "Batch rows of similar length together (less padding; pass true/false). "
            "Default: auto = on with a GPU, off on CPU."
        },
    )
    pad_to_multiple_of: int | None = field(
        default=None,
        metadata={
            "help": "Pad each batch to its longest row rounded up to this multiple (1: no rounding). "
            "Default: auto = 8 with a GPU (tensor cores), 1 on CPU."
        },
    )
    torch_compile: bool = field(default=False, metadata={"help": "Compile the model with torch.compile."})
    dataloader_num_workers: int | None = field(
        default=None,
        metadata={
            "help": "Loader worker processes per training process. "
            f"Default: auto = min({MAX_AUTO_WORKERS}, CPUs per process - 1) with a GPU, 0 on CPU."
        },
    )
    dataloader_pin_memory: bool = field(
        default=True,
        metadata={"help": "Pinned host memory for batches copied to the GPU (no effect on CPU)."},
    )
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
        for name in ("learning_rate", "warmup_ratio", "weight_decay", "num_train_epochs"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise TrainerInputError(f"--{name} must be a finite number; got: {value}")
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
        shortcut = "bf16" if self.bf16 else "fp16" if self.fp16 else None
        if shortcut and self.precision not in ("auto", shortcut):
            raise TrainerInputError(
                f"--{shortcut} contradicts --precision={self.precision}; pass one of them"
            )
        self.precision = shortcut or self.precision
        if self.precision not in PRECISIONS:  # HfArgumentParser checks choices; direct construction does not
            raise TrainerInputError(f"--precision must be one of {list(PRECISIONS)}; got: {self.precision}")
        if self.pad_to_multiple_of is not None and self.pad_to_multiple_of < 1:
            raise TrainerInputError(f"--pad_to_multiple_of must be >= 1; got: {self.pad_to_multiple_of}")
        if self.dataloader_num_workers is not None and self.dataloader_num_workers < 0:
            raise TrainerInputError(
                f"--dataloader_num_workers must be >= 0; got: {self.dataloader_num_workers}"
            )
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


HELP_DESCRIPTION = """\
Fine-tune a RoBERTa sequence classifier on yahoo_answers_topics (10 topics); the Katib trial program.
One process: python -m trainer.train ...; several: torchrun [--nproc_per_node=N] -m trainer.train ...
(in a PyTorchJob the Training Operator's PET_* variables tell torchrun the nodes and the master).
At every evaluation global rank 0 prints one Katib metric line on stdout:
  <RFC 3339 time> epoch=.. step=.. train_loss=.. eval_loss=.. eval_accuracy=.. eval_f1=..
Flags take --name=value; --name-with-dashes works too."""

HELP_EXAMPLES = """\
examples:
  python -m trainer.train --model_name_or_path=tiny --dataset=synthetic --output_dir=/tmp/trial
  torchrun --standalone --nproc_per_node=2 -m trainer.train --model_name_or_path=tiny \\
      --dataset=synthetic --learning_rate=3e-4 --global_batch_size=32 --output_dir=/tmp/trial"""


_METAVARS = {str: "TEXT", int: "N", float: "X"}


def help_formatter() -> type:
    """The --help layout: argparse's, with one name and one default per flag."""
    import argparse

    class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
        """One name per flag (HfArgumentParser also registers the --dashed alias) and one default."""

        def _format_action_invocation(self, action: argparse.Action) -> str:
            if not action.option_strings or not action.option_strings[0].startswith("--"):
                return super()._format_action_invocation(action)  # -h, --help
            name = action.option_strings[0]
            if action.nargs == 0:
                return name
            return f"{name} {self._format_args(action, self._get_default_metavar_for_optional(action))}"

        def _get_default_metavar_for_optional(self, action: argparse.Action) -> str:
            return _METAVARS.get(action.type, "BOOL")  # HfArgumentParser parses bools with a function

        def _get_help_string(self, action: argparse.Action) -> str:
            help_text = action.help or ""
            negative = action.option_strings[0] if action.option_strings else ""
            if negative.startswith("--no_") and action.const is False:  # HfArgumentParser's --no_<flag>
                return f"Same as --{action.dest}=false."
            # The help already says it better than the raw value would, or there is nothing to say.
            if "default:" in help_text.lower() or action.default is None:
                return help_text
            return super()._get_help_string(action)

    return HelpFormatter
