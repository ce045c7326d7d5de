"""Fixtures for trainer tests: a shared tokenization cache, a moto S3 server on 127.0.0.1, a trainer runner."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# Katib's default metricsFormat, written out here on purpose: the test checks the trainer against Katib,
# not against the trainer's own copy.
KATIB_REGEX = re.compile(r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)")
TINY_SYNTHETIC = ["--model_name_or_path=tiny", "--dataset=synthetic"]


def parse_katib_line(line: str) -> tuple[str, dict[str, float]]:
    """(first token, {name: value}) exactly as Katib's TEXT collector reads a line."""
    stamp = line.split(" ", 1)[0]
    return stamp, {m.group(1): float(m.group(2)) for m in KATIB_REGEX.finditer(line)}


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("katib-suite-cache")


def trainer_env(cache_dir: Path, **extra: str) -> dict[str, str]:
    # PYTEST_CURRENT_TEST names the running test: a warm trainer started by one test serves the next.
    dropped = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "PYTEST_CURRENT_TEST")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        KATIB_SUITE_CACHE=str(cache_dir),
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=str(REPO_ROOT),
    )
    env.update(extra)
    return env


def run_trainer(
    args: list[str], cache_dir: Path, nproc: int = 1, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess:
    if nproc == 1:
        command = [sys.executable, "-m", "trainer.train", *args]
    else:
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "trainer.train", *args,
        ]  # fmt: skip
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=trainer_env(cache_dir, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
