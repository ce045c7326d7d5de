"""bench/gpu_trainer.py on CPU with a tiny config, and without the `datasets` package (the GPU machine has none)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = dict(batch=4, seq=32, steps=2, warmup=1, matmul_size=256)
PATHS = ("trainer", "plain")


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict:
    blocker = tmp_path_factory.mktemp("no-datasets")
    (blocker / "sitecustomize.py").write_text("import sys\n\nsys.modules['datasets'] = None\n")
    env = {**os.environ, "PYTHONPATH": str(blocker), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    probe = subprocess.run([sys.executable, "-c", "import datasets"], env=env, capture_output=True, text=True)
    assert "ModuleNotFoundError" in probe.stderr  # the blocker works, so the run below proves something
    command = [
        sys.executable, str(REPO_ROOT / "bench" / "gpu_trainer.py"), "--model=tiny", "--cpu",
        f"--batch={TINY['batch']}", f"--max_seq_length={TINY['seq']}", f"--steps={TINY['steps']}",
        f"--warmup={TINY['warmup']}", f"--matmul_size={TINY['matmul_size']}", "--matmul_repeats=3",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)  # stdout is the JSON and nothing else


def _close(a: float, b: float) -> bool:
    return a == pytest.approx(b, rel=2e-3)  # the figures carry 4 significant digits


@pytest.mark.slow
def test_both_paths_report_throughput_and_peak_memory(figures: dict) -> None:
    assert figures["device"] == "cpu" and figures["model"] == "tiny roberta"
    assert (figures["per_device_batch"], figures["max_seq_length"]) == (TINY["batch"], TINY["seq"])
    assert figures["timed_steps"] == TINY["steps"]
    for path in PATHS:
        samples = figures["samples_per_s"][path]
        assert samples > 0
        # every synthetic row is exactly max_seq_length tokens
        assert _close(figures["tokens_per_s"][path], samples * TINY["seq"])
        assert 0 < figures["peak_memory_gib"][path] < 64
    assert figures["peak_memory_source"] == "process max RSS"
    assert _close(
        figures["trainer_vs_plain"], figures["samples_per_s"]["trainer"] / figures["samples_per_s"]["plain"]
    )
    # the trainer's CPU defaults, as a trial resolves them
    assert (
        figures["performance"]["precision"] == "fp32"
        and figures["performance"]["dataloader_num_workers"] == 0
    )


@pytest.mark.slow
def test_mfu_against_the_measured_matmul_rate_and_the_datasheet(figures: dict) -> None:
    from trainer.modeling import TINY_CONFIG

    layers, hidden, seq = TINY_CONFIG["num_hidden_layers"], TINY_CONFIG["hidden_size"], TINY["seq"]
    attention = 12 * layers * hidden * seq
    assert 0 < figures["non_embedding_parameters"] < figures["parameters"]
    assert figures["model_flops_per_token"] == 6 * figures["parameters"] + attention
    assert (
        figures["model_flops_per_token_non_embedding"] == 6 * figures["non_embedding_parameters"] + attention
    )
    matmul = figures["matmul"]
    assert (matmul["size"], matmul["dtype"]) == (TINY["matmul_size"], "fp32") and matmul["tflops"] > 0
    assert 980 <= figures["datasheet_bf16_tflops"] <= 1000
    for path in PATHS:
        tflops = figures["model_tflops"][path]
        assert _close(tflops, figures["tokens_per_s"][path] * figures["model_flops_per_token"] / 1e12)
        assert _close(figures["mfu_vs_matmul"][path], tflops / matmul["tflops"])
        assert _close(figures["mfu_vs_datasheet"][path], tflops / figures["datasheet_bf16_tflops"])
        strict = figures["mfu_vs_matmul_non_embedding"][path]
        ratio = figures["model_flops_per_token_non_embedding"] / figures["model_flops_per_token"]
        assert _close(strict, figures["mfu_vs_matmul"][path] * ratio)
    assert figures["targets"] == {"mfu_vs_matmul": 0.45, "trainer_vs_plain": 0.95}


def test_bad_arguments_are_one_line_usage_errors() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "gpu_trainer.py"), "--steps=0"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "--steps must be >= 1; got: 0" in done.stderr
