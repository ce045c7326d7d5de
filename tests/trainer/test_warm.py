"""The warm trainer: trial processes forked from a server that imported the libraries once.

A forked process must compute what the cold one computes, exit as it exits, die when it is told to, and
never run where it would differ from the cold process (then it starts cold and says why).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.trainer.conftest import REPO_ROOT, TINY_SYNTHETIC, run_trainer, trainer_env
from trainer import warm

MINIMAL = [*TINY_SYNTHETIC, "--learning_rate=3e-4", "--global_batch_size=32", "--per_device_batch_size=16",
           "--max_seq_length=64", "--seed=42", "--max_steps=1", "--max_eval_samples=32"]  # fmt: skip
# Long enough to be signalled mid-run (the synthetic set at 2 epochs: a few hundred steps).
LONG = [*TINY_SYNTHETIC, "--learning_rate=3e-4", "--global_batch_size=16", "--per_device_batch_size=16",
        "--max_seq_length=64", "--num_train_epochs=2"]  # fmt: skip


class Server:
    def __init__(self, socket: Path, proc: subprocess.Popen, log: Path):
        self.socket, self.proc, self.log = socket, proc, log

    def env(self, **extra: str) -> dict[str, str]:
        return {warm.WARM_SOCKET_ENV: str(self.socket), **extra}


def start_server(directory: Path, cache_dir: Path, timeout: float = 180) -> Server:
    socket = directory / "warm.sock"
    log = directory / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "trainer.warm", f"--socket={socket}"],
            cwd=REPO_ROOT,
            env=trainer_env(cache_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while not socket.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the warm trainer did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return Server(socket, proc, log)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path):
    running = start_server(tmp_path_factory.mktemp("warm"), cache_dir)
    yield running
    running.proc.terminate()
    running.proc.wait(timeout=10)


def trial_json(directory: Path) -> dict:
    return json.loads((directory / "trial.json").read_text())


@pytest.mark.slow
def test_a_forked_two_process_trial_computes_what_the_cold_one_computes(server, cache_dir, tmp_path) -> None:
    cold = run_trainer([*MINIMAL, f"--output_dir={tmp_path / 'cold'}"], cache_dir, nproc=2)
    forked = run_trainer([*MINIMAL, f"--output_dir={tmp_path / 'warm'}"], cache_dir, nproc=2, **server.env())
    assert cold.returncode == 0 and forked.returncode == 0, cold.stderr[-2000:] + forked.stderr[-2000:]
    # The same metric lines (timestamps aside), the same record, and one hand-off per process.
    assert [line.split(" ", 1)[1] for line in cold.stdout.splitlines()] == [
        line.split(" ", 1)[1] for line in forked.stdout.splitlines()
    ]
    cold_record, warm_record = trial_json(tmp_path / "cold"), trial_json(tmp_path / "warm")
    assert cold_record["timings"]["warm_start"] is False and warm_record["timings"]["warm_start"] is True
    assert warm_record["metrics"] == cold_record["metrics"]
    assert warm_record["training"] == cold_record["training"]
    assert warm_record["world_size"] == 2
    assert "starting cold" not in forked.stderr


def test_bad_input_fails_the_same_way_through_the_server(server, cache_dir) -> None:
    done = run_trainer(["--learning_rat=1e-4"], cache_dir, **server.env())
    assert done.returncode == 2
    assert "--learning_rat" in done.stderr and "Traceback" not in done.stderr
    helped = run_trainer(["--help"], cache_dir, **server.env())
    assert helped.returncode == 0 and "usage: python -m trainer.train" in helped.stdout


def test_a_different_environment_is_refused_by_name_and_the_process_starts_cold(server, cache_dir) -> None:
    done = run_trainer(["--help"], cache_dir, **server.env(HF_HOME="/somewhere/else", API_TOKEN="s3cr3t"))
    assert done.returncode == 0 and "usage:" in done.stdout  # ran cold, here
    assert "refused this process: the environment differs in API_TOKEN, HF_HOME" in done.stderr
    assert "s3cr3t" not in done.stderr and "/somewhere/else" not in done.stderr


def test_the_per_process_variables_may_differ(server, cache_dir) -> None:
    done = run_trainer(
        ["--help"], cache_dir, **server.env(RANK="0", LOCAL_RANK="0", PET_NNODES="2", KATIB_TRIAL_NAME="t1")
    )
    assert done.returncode == 0 and "refused" not in done.stderr and "usage:" in done.stdout


def test_an_unreachable_server_means_a_cold_start_with_a_note(cache_dir, tmp_path) -> None:
    done = run_trainer(["--help"], cache_dir, **{warm.WARM_SOCKET_ENV: str(tmp_path / "none.sock")})
    assert done.returncode == 0 and "usage:" in done.stdout
    assert f"warm trainer at {tmp_path / 'none.sock'} not reachable" in done.stderr


def test_a_server_refuses_a_trainer_whose_source_changed() -> None:
    request = {"executable": sys.executable, "trainer": warm.source_signature(), "env": dict(os.environ)}
    assert warm.refusal(request, warm.source_signature(), dict(os.environ)) is None
    stale = [[path, size + 1, mtime] for path, size, mtime in warm.source_signature()]
    assert "source files changed" in warm.refusal(request, stale, dict(os.environ))
    other_python = {**request, "executable": "/usr/bin/python3.9"}
    assert "/usr/bin/python3.9" in warm.refusal(other_python, warm.source_signature(), dict(os.environ))


def _trainer_children(server: Server) -> list[psutil.Process]:
    return [p for p in psutil.Process(server.proc.pid).children() if p.is_running()]


def _start_long(server: Server, cache_dir: Path, output: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainer.train", *LONG, f"--output_dir={output}"],
        cwd=REPO_ROOT,
        env=trainer_env(cache_dir, **server.env()),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.readline()  # the first metric line: the forked trainer is training
    return proc


def _wait_gone(processes: list[psutil.Process], timeout: float = 10) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return alive


@pytest.mark.slow
def test_sigterm_reaches_the_forked_trainer_and_the_process_dies_of_it(server, cache_dir, tmp_path) -> None:
    proc = _start_long(server, cache_dir, tmp_path / "out")
    children = _trainer_children(server)
    assert len(children) == 1
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM  # as the cold process would
    assert _wait_gone(children) == []
    assert not (tmp_path / "out" / "trial.json").exists()


@pytest.mark.slow
def test_a_sigkilled_process_takes_its_forked_trainer_with_it(server, cache_dir, tmp_path) -> None:
    proc = _start_long(server, cache_dir, tmp_path / "out")
    children = _trainer_children(server)
    assert len(children) == 1
    proc.kill()
    proc.wait(timeout=10)
    assert _wait_gone(children) == []  # the lifeline: nothing trains on for nobody
    assert server.proc.poll() is None  # the server serves on


def test_the_server_stops_when_the_process_that_started_it_is_gone(cache_dir, tmp_path) -> None:
    # A parent that starts the server and exits at once: the server must not outlive it for long.
    launcher = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys; p = subprocess.Popen([sys.executable, '-m', 'trainer.warm', "
            f"'--socket={tmp_path / 'w.sock'}', f'--parent={{os.getpid()}}']); print(p.pid)",
        ],
        cwd=REPO_ROOT,
        env=trainer_env(cache_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    orphan = psutil.Process(int(launcher.stdout.strip()))
    orphan.wait(timeout=120)  # not its parent: psutil cannot tell the code, only that it ended in time
    assert not (tmp_path / "w.sock").exists()


def test_compatible_env_drops_exactly_the_per_process_variables() -> None:
    env = {"RANK": "1", "PET_NPROC_PER_NODE": "2", "MASTER_PORT": "29500", "HF_HOME": "/h", "PATH": "/bin"}
    assert warm.compatible_env(env) == {"HF_HOME": "/h", "PATH": "/bin"}
