"""A trial's replicas as process groups that outlive the runner and can be found again.

Each replica runs in its own session (so its whole tree, torchrun and its workers, stops at once) under
a tiny ``sh`` wrapper that writes ``<replica>.pid`` when it starts and ``<replica>.exit`` (the exit code)
when the program ends. A runner SIGKILLed mid-trial thus leaves enough on disk for the next reader to
tell, without being the processes' parent, whether a replica still runs, finished (and how), or was
killed: reconcile adopts what still runs and records what finished, as Katib would on a cluster.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from experiments.errors import KatibSuiteError

# $1: the pid file, $2: the exit-code file, then the replica's argv, passed through "$@" unchanged (no
# shell parsing of the trial's arguments). A replica killed by a signal writes nothing: "no exit code".
_WRAPPER = 'echo $$ >"$1"; e=$2; shift 2; "$@"; c=$?; echo $c >"$e"; exit $c'
# How long a reader waits for a just-started replica's pid file (the wrapper writes it within ms).
PID_FILE_WAIT = 1.0


class TrialStartError(KatibSuiteError):
    """A replica cannot be started (its executable is missing or not executable)."""


@dataclass(frozen=True)
class ReplicaState:
    """What the files and the process table say about one replica."""

    running: bool
    exit_code: int | None  # None: still running, never started, or killed without an exit code
    started: bool = True
    exited_at: float | None = None  # when the exit code was written (epoch seconds)


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    # `torchrun` / `python` in a trial command must be this interpreter's, as the image's would be.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra)
    return env


def resolve_command(argv: list[str], env: Mapping[str, str], cwd: Path, replica: str) -> str:
    """The executable a replica runs, checked before any replica of the trial starts."""
    program = argv[0]
    if os.sep in program:
        path = Path(program) if os.path.isabs(program) else cwd / program
        if not path.is_file():
            raise TrialStartError(
                f"replica {replica}: the trial command {program!r} does not exist (looked in {cwd}); "
                "fix the command path in the trialSpec"
            )
        if not os.access(path, os.X_OK):
            raise TrialStartError(
                f"replica {replica}: the trial command {program!r} is not executable; "
                f"chmod +x it or run it through its interpreter (e.g. [python, {program}])"
            )
        return str(path)
    found = shutil.which(program, path=env.get("PATH"))
    if found is None:
        raise TrialStartError(
            f"replica {replica}: command not found: {program!r} (searched PATH and this Python's bin/); "
            "install it in this environment or fix the trialSpec's command"
        )
    script = _python_script(program, argv[1:], cwd)
    if script is not None and not script.is_file():
        raise TrialStartError(
            f"replica {replica}: {program} cannot open the script {str(script)!r}: no such file "
            f"(looked in {cwd}); fix the path in the trialSpec's command/args"
        )
    return found


def _python_script(program: str, args: list[str], cwd: Path) -> Path | None:
    # `python path/to/train.py`: the one argument shape whose missing file can be seen before starting.
    if not Path(program).name.startswith("python") or not args:
        return None
    first = args[0]
    if first.startswith("-") or not first.endswith(".py"):
        return None
    return Path(first) if os.path.isabs(first) else cwd / first


class TrialProcesses:
    """The replicas of one trial: started here, or adopted from a runner that is gone."""

    def __init__(self, log_dir: Path, replicas: Iterable[str], primary: str):
        self.log_dir = log_dir
        self.replicas = tuple(replicas)
        self.primary = primary
        self.procs: dict[str, subprocess.Popen] = {}
        self.exit_codes: dict[str, int] = {}

    @classmethod
    def start(cls, plan, log_dir: Path, cwd: Path) -> TrialProcesses:
        """Start every replica of ``plan``; a replica that cannot start fails the trial before any runs."""
        procs = cls(
            log_dir, [r.name for r in plan.replicas], next(r.name for r in plan.replicas if r.primary)
        )
        log_dir.mkdir(parents=True, exist_ok=True)
        prepared = []
        for replica in plan.replicas:
            env = child_env(replica.env)
            argv = list(replica.argv)
            try:
                program = resolve_command(argv, env, cwd, replica.name)
            except TrialStartError as error:
                with open(procs.log_path(replica.name), "a") as out:
                    out.write(f"error: {error}\n")  # so `katib experiment logs` shows it too
                raise
            prepared.append((replica.name, [program, *argv[1:]], env))
        try:
            for name, argv, env in prepared:
                with open(procs.log_path(name), "ab") as out:
                    procs.procs[name] = subprocess.Popen(
                        [
                            "/bin/sh",
                            "-c",
                            _WRAPPER,
                            "katib-replica",
                            procs._pid_file(name),
                            procs._exit_file(name),
                            *argv,
                        ],
                        cwd=cwd,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
        except OSError as error:
            procs.kill()  # never half a trial: the replicas already started stop with it
            raise TrialStartError(f"replica {name} could not start: {error}") from None
        return procs

    # -- files ---------------------------------------------------------------------------------------
    def log_path(self, replica: str) -> Path:
        return self.log_dir / f"{replica}.log"

    def _pid_file(self, replica: str) -> str:
        return str(self.log_dir / f"{replica}.pid")

    def _exit_file(self, replica: str) -> str:
        return str(self.log_dir / f"{replica}.exit")

    @property
    def logs(self) -> dict[str, Path]:
        return {name: self.log_path(name) for name in self.replicas}

    def pid(self, replica: str) -> int | None:
        proc = self.procs.get(replica)
        if proc is not None:
            return proc.pid
        return _read_int(Path(self._pid_file(replica)))

    # -- state ---------------------------------------------------------------------------------------
    def state(self, replica: str, wait_for_pid: float = 0.0) -> ReplicaState:
        """Whether ``replica`` runs, ended with a code, or ended without one (killed)."""
        if replica in self.exit_codes:
            return ReplicaState(False, self.exit_codes[replica])
        proc = self.procs.get(replica)
        exit_file = Path(self._exit_file(replica))
        if proc is not None:
            code = proc.poll()  # our own child: reap it
            if code is None:
                return ReplicaState(True, None)
            written = _read_int(exit_file)
            # Killed by a signal: the wrapper wrote nothing, Popen says -N.
            return ReplicaState(False, written if written is not None else code, exited_at=_mtime(exit_file))
        pid_file = Path(self._pid_file(replica))
        deadline = time.monotonic() + wait_for_pid
        while not pid_file.exists() and time.monotonic() < deadline and self.log_path(replica).exists():
            time.sleep(0.02)
        pid = _read_int(pid_file)
        if pid is None:
            return ReplicaState(False, None, started=False)
        # Liveness first, then the exit file: the wrapper writes the code just before it exits.
        if _alive(pid, _mtime(pid_file)):
            return ReplicaState(True, None)
        return ReplicaState(False, _read_int(exit_file), exited_at=_mtime(exit_file))

    def poll(self) -> dict[str, int]:
        """Exit codes of the replicas that ended with one (killed replicas without one are left out)."""
        for name in self.replicas:
            if name not in self.exit_codes:
                state = self.state(name)
                if not state.running and state.exit_code is not None:
                    self.exit_codes[name] = state.exit_code
        return dict(self.exit_codes)

    def identities(self) -> list[list]:
        """[pid, start time] of each replica's group leader, so a later runner can stop orphans safely."""
        import psutil

        out = []
        for proc in self.procs.values():
            try:
                out.append([proc.pid, psutil.Process(proc.pid).create_time()])
            except psutil.NoSuchProcess:
                continue
        return out

    def kill(self, grace: float = 3.0) -> None:
        """Stop every replica's whole process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
        groups = [pid for name in self.replicas if (pid := self._live_group(name)) is not None]
        for pid in groups:
            _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name in self.replicas:
            while self.state(name).running and time.monotonic() < deadline:
                time.sleep(0.02)
        # The group leader may be gone while its children (torchrun's workers) linger: always sweep.
        for pid in groups:
            _signal_group(pid, signal.SIGKILL)
        for proc in self.procs.values():
            proc.wait()
        self.poll()

    def _live_group(self, replica: str) -> int | None:
        proc = self.procs.get(replica)
        if proc is not None:
            return proc.pid
        pid_file = Path(self._pid_file(replica))
        pid = _read_int(pid_file)
        if pid is None:
            return None
        # An adopted leader that is gone (or a zombie) may still lead a group; a reused pid must not be hit.
        return None if _reused(pid, _mtime(pid_file)) else pid


def kill_orphans(identities) -> None:
    """Stop the process groups a dead runner left behind (only those whose leader is the same process)."""
    import psutil

    for pid, created in identities or []:
        try:
            if abs(psutil.Process(pid).create_time() - created) < 1.0:
                _signal_group(pid, signal.SIGKILL)
        except psutil.NoSuchProcess:
            # The leader is gone; its group may live on (torchrun's workers), still under the same id.
            _signal_group(pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, IsADirectoryError):
        return None
    try:
        return int(text)
    except ValueError:  # being written this instant
        return None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def _reused(pid: int, pid_written: float | None) -> bool:
    """``pid`` now belongs to a process that started after the replica wrote its pid file."""
    import psutil

    try:
        return pid_written is not None and psutil.Process(pid).create_time() > pid_written + 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _alive(pid: int, pid_written: float | None) -> bool:
    """``pid`` runs and is the process that wrote its pid file (a reused pid starts after the file)."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return pid_written is None or process.create_time() <= pid_written + 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
