"""Speed settings: every ``auto`` resolved from the device, what the Trainer gets, what trial.json records."""

from __future__ import annotations

import pytest

from trainer.args import TrainArguments
from trainer.errors import TrainerInputError
from trainer.performance import DeviceCaps, Performance, probe, resolve

CPU = DeviceCaps("cpu", cpu_count=2)
H100 = DeviceCaps("cuda", bf16=True, tf32=True, cpu_count=32)
T4 = DeviceCaps("cuda", bf16=False, tf32=False, cpu_count=8)


def _args(**flags) -> TrainArguments:
    return TrainArguments(output_dir="/tmp/unused", **flags)


def test_auto_defaults_on_cpu_compute_what_a_cpu_trial_always_did() -> None:
    perf = resolve(_args(), CPU)
    assert perf == Performance(
        precision="fp32",
        tf32=False,
        attn_implementation="sdpa",
        optim="adamw_torch_fused",
        group_by_length=False,
        pad_to_multiple_of=None,
        torch_compile=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
    )
    kwargs = perf.training_arguments()
    assert kwargs["bf16"] is False and kwargs["fp16"] is False and kwargs["tf32"] is None
    assert kwargs["train_sampling_strategy"] == "random"
    assert kwargs["dataloader_num_workers"] == 0 and kwargs["dataloader_persistent_workers"] is False


def test_probe_on_this_machine_reports_a_cpu() -> None:
    caps = probe("cpu")
    assert caps.device_type == "cpu" and not caps.bf16 and not caps.tf32 and caps.cpu_count >= 1
    assert resolve(_args(), caps).precision == "fp32"


@pytest.mark.parametrize(
    ("caps", "local_world_size", "precision", "tf32", "workers"),
    [
        (H100, 8, "bf16", True, 3),  # 32 CPUs / 8 processes = 4 each, one left for the process itself
        (H100, 1, "bf16", True, 4),  # capped
        (T4, 1, "fp16", False, 4),  # no bf16: fp16 with the Trainer's loss scaler
        (T4, 8, "fp16", False, 0),  # one CPU per process: no spare CPU for a worker
    ],
)
def test_auto_defaults_on_a_gpu_take_the_fast_path(
    caps: DeviceCaps, local_world_size: int, precision: str, tf32: bool, workers: int
) -> None:
    perf = resolve(_args(), caps, local_world_size)
    assert (perf.precision, perf.tf32, perf.dataloader_num_workers) == (precision, tf32, workers)
    assert perf.group_by_length and perf.pad_to_multiple_of == 8 and perf.dataloader_pin_memory
    kwargs = perf.training_arguments()
    assert kwargs[precision] is True and kwargs["train_sampling_strategy"] == "group_by_length"
    assert kwargs["dataloader_persistent_workers"] is (workers > 0)


def test_explicit_flags_win_over_auto() -> None:
    perf = resolve(
        _args(
            precision="fp32",
            tf32=False,
            attn_implementation="eager",
            optim="adamw_torch",
            group_by_length=False,
            pad_to_multiple_of=1,
            torch_compile=True,
            dataloader_num_workers=2,
            dataloader_pin_memory=False,
        ),
        H100,
    )
    assert perf.record() == {
        "precision": "fp32",
        "tf32": False,
        "attn_implementation": "eager",
        "optim": "adamw_torch",
        "group_by_length": False,
        "pad_to_multiple_of": None,
        "torch_compile": True,
        "dataloader_num_workers": 2,
        "dataloader_pin_memory": False,
    }
    assert resolve(_args(bf16=True), CPU).precision == "bf16"  # bf16 autocast works on CPU too
    assert resolve(_args(group_by_length=True, pad_to_multiple_of=16), CPU).pad_to_multiple_of == 16


@pytest.mark.parametrize(
    ("flags", "caps", "expected"),
    [
        ({"fp16": True}, CPU, "--fp16 needs a CUDA GPU"),
        ({"precision": "fp16"}, CPU, "--fp16 needs a CUDA GPU"),
        ({"precision": "bf16"}, T4, "no bf16 support; pass --precision=fp16"),
    ],
)
def test_requests_the_device_cannot_honour_are_refused(flags: dict, caps: DeviceCaps, expected: str) -> None:
    with pytest.raises(TrainerInputError, match=expected.replace("(", r"\(")):
        resolve(_args(**flags), caps)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"bf16": True, "precision": "fp32"}, "--bf16 contradicts --precision=fp32"),
        ({"precision": "fp8"}, "--precision must be one of"),
        ({"pad_to_multiple_of": 0}, "--pad_to_multiple_of must be >= 1"),
        ({"dataloader_num_workers": -1}, "--dataloader_num_workers must be >= 0"),
    ],
)
def test_bad_speed_flags_are_refused(flags: dict, expected: str) -> None:
    with pytest.raises(TrainerInputError, match=expected):
        _args(**flags)
