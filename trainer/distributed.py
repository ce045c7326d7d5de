"""The distributed environment: torchrun / Training Operator variables, process group, shared setup work.

torchrun (locally, or inside a PyTorchJob pod where it reads PET_*) sets RANK, LOCAL_RANK and WORLD_SIZE per
process. A PyTorchJob with one process per pod runs plain ``python -m trainer.train`` with RANK (the pod
index), WORLD_SIZE and MASTER_ADDR/PORT; that works too. Nothing set means one process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from trainer.errors import PeerRankFailed, TrainerError, TrainerInputError

T = TypeVar("T")


@dataclass(frozen=True)
class DistEnv:
    rank: int
    local_rank: int
    world_size: int
    device_type: str  # "cuda" | "cpu"
    local_world_size: int = 1  # processes on this node (torchrun's LOCAL_WORLD_SIZE)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def backend(self) -> str:
        return "nccl" if self.device_type == "cuda" else "gloo"


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise TrainerInputError(f"environment variable {name} must be an integer; got: {raw!r}") from None


def detect() -> DistEnv:
    import torch

    world_size = _int_env("WORLD_SIZE", 1)
    rank = _int_env("RANK", 0)
    local_rank = _int_env("LOCAL_RANK", 0)
    nproc = os.environ.get("PET_NPROC_PER_NODE", "1")
    # The Training Operator sets RANK to the pod index; with several processes per pod only torchrun
    # turns that into per-process ranks. Without it every process would claim the same rank and hang.
    if nproc.isdigit() and int(nproc) > 1 and "TORCHELASTIC_RUN_ID" not in os.environ:
        raise TrainerInputError(
            f"PET_NPROC_PER_NODE={nproc} but the trainer was not started by torchrun; "
            "run it as `torchrun -m trainer.train ...`"
        )
    if world_size < 1 or not 0 <= rank < world_size:
        raise TrainerInputError(
            f"RANK={rank} must be in [0, WORLD_SIZE={world_size}); check the launcher env"
        )
    if world_size > 1 and not os.environ.get("MASTER_ADDR"):
        raise TrainerInputError(f"WORLD_SIZE={world_size} but MASTER_ADDR is not set; launch with torchrun")
    local_world_size = _int_env("LOCAL_WORLD_SIZE", 1)
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    if device_type == "cuda" and local_rank >= torch.cuda.device_count():
        # nccl wants one process per GPU; a second process on a GPU would deadlock or run out of memory.
        raise TrainerInputError(
            f"LOCAL_RANK={local_rank} but this node has {torch.cuda.device_count()} GPU(s); "
            "start one process per GPU (torchrun --nproc_per_node=<number of GPUs>)"
        )
    return DistEnv(
        rank=rank,
        local_rank=local_rank,
        world_size=world_size,
        device_type=device_type,
        local_world_size=local_world_size,
    )


def init(env: DistEnv) -> None:
    if not env.distributed:
        return
    import torch
    import torch.distributed as dist

    if env.device_type == "cuda":
        torch.cuda.set_device(env.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=env.backend)


def destroy() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def on_every_rank(env: DistEnv, work: Callable[[], T]) -> T:
    """Run ``work`` on every rank at once, then agree on the outcome.

    ``work`` fills caches under file locks (the tokenizer in trainer.modeling, tokenized data in
    trainer.data): the first rank there builds each one while the others wait on its lock, then read it. So
    nothing is built twice, and with warm caches no rank waits for another (rank 0 first, then the others,
    would put every rank's loading on the critical path one after the other). The wait is on a file lock,
    not a collective, so a long first tokenization cannot run into the process group's timeout.

    A failure on any rank fails them all: rank 0 reports it (its own error, or the other rank's), the
    others raise ``PeerRankFailed`` and exit quietly. A rank's own bug (not a TrainerError) still raises there,
    traceback and all.
    """
    if not env.distributed:
        return work()
    import torch.distributed as dist

    result: T | None = None
    own: BaseException | None = None
    try:
        result = work()
    except Exception as error:
        own = error
    failures: list[str | None] = [None] * env.world_size
    dist.all_gather_object(failures, None if own is None else _describe(own))
    if own is None and not any(failures):
        return result  # type: ignore[return-value]
    if env.is_main:
        if own is not None:
            raise own
        rank, message = next((r, m) for r, m in enumerate(failures) if m)
        raise TrainerError(f"rank {rank} failed: {message}")
    if own is not None and not isinstance(own, TrainerError):
        raise own
    raise PeerRankFailed("another rank failed")


def _describe(error: BaseException) -> str:
    return str(error) if isinstance(error, TrainerError) else f"{type(error).__name__}: {error}"


def all_reduce_sum(env: DistEnv, value: int) -> int:
    if not env.distributed:
        return value
    import torch
    import torch.distributed as dist

    device = torch.device("cuda", env.local_rank) if env.device_type == "cuda" else torch.device("cpu")
    tensor = torch.tensor([value], dtype=torch.long, device=device)
    dist.all_reduce(tensor)
    return int(tensor.item())
