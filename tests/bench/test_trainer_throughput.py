"""bench/trainer_throughput.py runs through the trainer's own build_trainer (a signature change breaks it here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_trainer_and_plain_loop_throughput_are_reported(tmp_path: Path) -> None:
    command = [
        sys.executable, str(REPO_ROOT / "bench" / "trainer_throughput.py"), "--threads=1", "--batch=8",
        "--steps=2", "--warmup=1", "--repeats=1", "--max_seq_length=32", f"--cache_dir={tmp_path}",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    trainer, plain = figures["trainer_samples_per_s"], figures["plain_loop_samples_per_s"]
    assert trainer > 0 and plain > 0
    assert figures["runs"] == {"trainer": [trainer], "plain": [plain]}
    assert figures["ratio"] == pytest.approx(trainer / plain, abs=2e-3)
    assert (figures["batch"], figures["timed_steps"], figures["threads"]) == (8, 2, 1)
