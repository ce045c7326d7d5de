"""The speed settings of a run (precision, TF32, attention, optimizer, sampler, loaders, compile) resolved once.

Each setting is a flag whose ``auto`` default is decided here from the device, so a CPU trial computes what
it always did and a GPU trial gets the fast path without extra flags: bf16 autocast where the GPU has it
(fp16 with a loss scaler where it does not), TF32 matmuls on Ampere or newer, length-grouped batches padded
to a multiple of 8 (tensor cores), pinned-memory loaders with worker processes. The resolved values go to
``TrainingArguments`` and into ``trial.json``, so a record says exactly how its run was computed.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from trainer.errors import TrainerInputError

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
ATTENTION_IMPLEMENTATIONS = ("sdpa", "eager")
OPTIMIZERS = ("adamw_torch_fused", "adamw_torch")
# Loader workers per GPU process when --dataloader_num_workers is auto: enough to hide tokenized-row
# collation behind the GPU step, never more than the CPUs the node has per process.
MAX_AUTO_WORKERS = 4
CUDA_PAD_MULTIPLE = 8


@dataclass(frozen=True)
class DeviceCaps:
    """What the device can do; read once from torch (``probe``) or given by a test."""

    device_type: str  # "cuda" | "cpu"
    bf16: bool = False  # CUDA bf16 matmuls (Ampere+)
    tf32: bool = False  # compute capability >= 8.0
    cpu_count: int = 1


@dataclass(frozen=True)
class Performance:
    precision: str  # "bf16" | "fp16" | "fp32"
    tf32: bool
    attn_implementation: str
    optim: str
    group_by_length: bool
    pad_to_multiple_of: int | None
    torch_compile: bool
    dataloader_num_workers: int
    dataloader_pin_memory: bool

    def record(self) -> dict[str, Any]:
        return asdict(self)

    def training_arguments(self) -> dict[str, Any]:
        """The ``transformers.TrainingArguments`` keywords these settings map to."""
        return {
            "bf16": self.precision == "bf16",
            "fp16": self.precision == "fp16",  # the Trainer adds the GradScaler for fp16
            "tf32": True if self.tf32 else None,  # None: leave torch's default (tf32 off) alone
            "optim": self.optim,
            "train_sampling_strategy": "group_by_length" if self.group_by_length else "random",
            "torch_compile": self.torch_compile,
            "dataloader_num_workers": self.dataloader_num_workers,
            "dataloader_pin_memory": self.dataloader_pin_memory,
            "dataloader_persistent_workers": self.dataloader_num_workers > 0,
        }


def probe(device_type: str) -> DeviceCaps:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if device_type != "cuda":
        return DeviceCaps("cpu", cpu_count=cpus)
    import torch

    major, _ = torch.cuda.get_device_capability()
    return DeviceCaps("cuda", bf16=torch.cuda.is_bf16_supported(), tf32=major >= 8, cpu_count=cpus)


def resolve(args: Any, caps: DeviceCaps, local_world_size: int = 1) -> Performance:
    """The settings a run uses: the flags in ``args`` (TrainArguments) with every ``auto`` decided.

    Raises TrainerInputError for a request the device cannot honour, before any process group starts.
    """
    cuda = caps.device_type == "cuda"
    precision = args.precision
    if precision == "auto":
        precision = ("bf16" if caps.bf16 else "fp16") if cuda else "fp32"
    elif precision == "fp16" and not cuda:
        raise TrainerInputError(
            "--fp16 needs a CUDA GPU (fp16 with a loss scaler); drop it, or use --precision=bf16 on CPU"
        )
    elif precision == "bf16" and cuda and not caps.bf16:
        raise TrainerInputError("this GPU has no bf16 support; pass --precision=fp16 (or auto)")
    workers = args.dataloader_num_workers
    if workers is None:
        per_process = caps.cpu_count // max(local_world_size, 1)
        workers = min(MAX_AUTO_WORKERS, max(per_process - 1, 0)) if cuda else 0
    pad = args.pad_to_multiple_of
    if pad is None:
        pad = CUDA_PAD_MULTIPLE if cuda else None
    elif pad <= 1:
        pad = None
    return Performance(
        precision=precision,
        tf32=bool(args.tf32 and cuda and caps.tf32),
        attn_implementation=args.attn_implementation,
        optim=args.optim,
        group_by_length=cuda if args.group_by_length is None else bool(args.group_by_length),
        pad_to_multiple_of=pad,
        torch_compile=bool(args.torch_compile),
        dataloader_num_workers=workers,
        dataloader_pin_memory=bool(args.dataloader_pin_memory and cuda),
    )
