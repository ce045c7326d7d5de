"""One warm trainer per runner: trial processes of ``trainer.train`` fork from it, ready to run.

Each trial process would otherwise import torch, transformers and datasets again (~2 s of CPU each, most
of a short trial's start-up). The runner starts ``python -m trainer.warm`` once, with the environment its
trials get, and names its socket in every replica's environment; the trial command is unchanged
(``torchrun -m trainer.train ...``) and each of its processes hands its work to the warm trainer, which
forks a child that runs it exactly as the cold process would. The trainer decides whether it can serve a
process (same Python, same trainer source, same environment; see trainer/warm.py); when it cannot, or is
not ready, the process starts cold. ``KATIB_WARM_START=0`` turns it off.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from experiments._env import WARM_START_ENV
from experiments.backends.local._procs import child_env
from experiments.backends.local._trial import TrialPlan, log, note_once
from trainer.warm import WARM_SOCKET_ENV  # stdlib only: importing it loads no library

# Importing the trainer's libraries takes ~4 s on a quiet laptop core; a loaded machine may take far longer.
READY_TIMEOUT = 120.0
TRAINER_MODULE = "trainer.train"
SERVER_MODULE = "trainer.warm"


def runs_trainer(argv: Sequence[str]) -> bool:
    """``torchrun -m trainer.train ...`` / ``python -m trainer.train ...``: the trainer as a module."""
    return any(a == "-m" and b == TRAINER_MODULE for a, b in itertools.pairwise(argv)) or any(
        a == f"-m{TRAINER_MODULE}" for a in argv
    )


def enabled() -> bool:
    return os.environ.get(WARM_START_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class WarmTrainer:
    """The runner's warm trainer: started for the first trial that runs the trainer, stopped with the runner."""

    def __init__(self, log_dir: Path, cwd: Path):
        self.log_dir = log_dir
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self.directory: Path | None = None
        self.broken = not enabled()

    @property
    def socket(self) -> Path | None:
        return self.directory / "trainer.sock" if self.directory is not None else None

    def serve(self, plan: TrialPlan, interrupted: Callable[[], None]) -> TrialPlan:
        """``plan`` with the warm trainer's socket in each replica's environment, or ``plan`` as it is."""
        if self.broken or not any(runs_trainer(r.argv) for r in plan.replicas):
            return plan
        if self.proc is None:
            self._start(plan)
        if not self._wait_ready(interrupted):
            return plan
        replicas = tuple(
            dataclasses.replace(r, env={**r.env, WARM_SOCKET_ENV: str(self.socket)}) for r in plan.replicas
        )
        return dataclasses.replace(plan, replicas=replicas)

    def _start(self, plan: TrialPlan) -> None:
        primary = next(r for r in plan.replicas if r.primary)
        # A short path: a Unix socket's path may hold ~100 bytes, a deep work directory may not fit.
        self.directory = Path(tempfile.mkdtemp(prefix="katib-warm-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / "warm-trainer.log", "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-u",
                    "-m",
                    SERVER_MODULE,
                    f"--socket={self.socket}",
                    f"--parent={os.getpid()}",
                ],
                cwd=self.cwd,
                env=child_env(primary.env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the runner, which stops it after the trials
            )
        log.info("starting the warm trainer (pid %d); trials fork from it once it is ready", self.proc.pid)

    def _wait_ready(self, interrupted: Callable[[], None]) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.socket.exists():
            code = self.proc.poll()
            if code is not None or time.monotonic() > deadline:
                why = f"exited {code}" if code is not None else f"was not ready after {READY_TIMEOUT:g}s"
                note_once(
                    f"the warm trainer {why} (see {self.log_dir / 'warm-trainer.log'}); "
                    "trials start cold, importing their libraries themselves"
                )
                self.stop()
                self.broken = True
                return False
            interrupted()
            time.sleep(0.05)
        return True

    def stop(self) -> None:
        """Stop the server; trial processes it forked run on to their end (they belong to their trials)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
