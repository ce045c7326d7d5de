"""The distributed environment: torchrun / Training Operator variables, process group, rank-0-first work.

torchrun (locally, or inside a PyTorchJob pod where it reads PET_*) sets RANK, LOCAL_RANK and WORLD_SIZE per
process. A PyTorchJob with one process per pod runs plain ``python -m trainer.train`` with RANK (the pod
index), WORLD_SIZE and MASTER_ADDR/PORT; that works too. Nothing set means one process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from trainer.errors import PeerRankFailed, TrainerInputError

T = TypeVar("T")


@dataclass(frozen=True)
class DistEnv:
    rank: int
    local_rank: int
    world_size: int
    device_type: str  # "cuda" | "cpu"

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
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    return DistEnv(rank=rank, local_rank=local_rank, world_size=world_size, device_type=device_type)


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


def _broadcast_error(env: DistEnv, message: str | None) -> str | None:
    import torch.distributed as dist

    box = [message]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def rank_zero_first(env: DistEnv, work: Callable[[], T]) -> T:
    """Run ``work`` on rank 0, then on the other ranks (which then find rank 0's cache).

    If rank 0 fails, the others raise ``PeerRankFailed`` instead of waiting on a barrier for the
    process-group timeout.
    """
    if not env.distributed:
        return work()
    if env.is_main:
        try:
            result = work()
        except BaseException as error:
            _broadcast_error(env, f"{type(error).__name__}: {error}")
            raise
        _broadcast_error(env, None)
        return result
    failure = _broadcast_error(env, None)
    if failure is not None:
        raise PeerRankFailed(f"rank 0 failed: {failure}")
    return work()


def all_reduce_sum(env: DistEnv, value: int) -> int:
    if not env.distributed:
        return value
    import torch
    import torch.distributed as dist

    device = torch.device("cuda", env.local_rank) if env.device_type == "cuda" else torch.device("cpu")
    tensor = torch.tensor([value], dtype=torch.long, device=device)
    dist.all_reduce(tensor)
    return int(tensor.item())
