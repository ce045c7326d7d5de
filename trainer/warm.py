"""A warm trainer: one process that has imported the trainer's libraries forks each trial process.

Importing torch, transformers' Trainer and datasets costs every trial process ~2 s of CPU before it
reads an argument; a run of many short trials pays it again and again. ``serve`` imports them once and
listens on a Unix socket; a trial process started as usual (``torchrun -m trainer.train ...``) whose
environment names that socket (``KATIB_SUITE_WARM_SOCKET``) hands its argv, environment, working
directory and stdin/stdout/stderr to the server and waits; the server forks a child that becomes that
trial process, with the same arguments, environment and output, and computes what the cold process would.

Life cycle, so a trial behaves as if it were the cold process:
- the child is the leader of its own process group; SIGTERM/SIGINT/SIGHUP sent to the waiting process
  are passed on to that group, and the waiting process exits as the child did (same code, same signal);
- the child holds the waiting process's end of the connection as a lifeline: if the waiting process dies
  (SIGKILL), the child kills its group at once;
- the server refuses (and the process starts cold, saying why on stderr) when the request's Python, the
  trainer's source files or any environment variable a library may read at import differ from its own;
- the server stops when its parent (the runner that started it) is gone; children already forked run on.

    python -m trainer.warm --socket /tmp/warm.sock &          # ready once the socket exists
    KATIB_SUITE_WARM_SOCKET=/tmp/warm.sock torchrun --nproc_per_node=2 -m trainer.train ...
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import socket
import struct
import sys
from pathlib import Path
from typing import Any

WARM_SOCKET_ENV = "KATIB_SUITE_WARM_SOCKET"
# Set per process by torchrun, the Training Operator or the local backend, and read at run time only
# (torch.distributed, the trainer): they may differ between the server and a trial it serves.
PER_PROCESS_ENV = frozenset(
    {
        WARM_SOCKET_ENV,
        "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
        "ROLE_NAME", "ROLE_RANK", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
        "TORCHELASTIC_ERROR_FILE", "TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_RESTART_COUNT",
        "TORCHELASTIC_RUN_ID", "TORCHELASTIC_SIGNALS_TO_HANDLE", "TORCHELASTIC_USE_AGENT_STORE",
        "TORCH_NCCL_ASYNC_ERROR_HANDLING", "KATIB_TRIAL_NAME",
        "OMP_NUM_THREADS",  # applied to the child with torch.set_num_threads
        "PWD", "OLDPWD", "SHLVL", "_",  # the shell's bookkeeping
    }
)  # fmt: skip
PER_PROCESS_PREFIXES = ("PET_",)  # the Training Operator's torchrun settings
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
CONNECT_TIMEOUT = 2.0
# The server answers at once unless the machine is swamped; a process that gave up would start cold
# while its forked twin (killed by the lifeline as soon as it notices) had begun: wait long.
REPLY_TIMEOUT = 60.0
_HEADER = struct.Struct("!I")  # the request's length, sent with the three stdio descriptors
_forked = False  # this process is a child of the server
_exiting = None  # set (a threading.Event) once the child has sent its exit code


# -- the waiting side (inside the trial's own process; imports nothing heavy) ---------------------------
def hand_off(argv: list[str]) -> int | None:
    """Run this trial process in the warm server; its exit code, or None to start cold here."""
    path = os.environ.get(WARM_SOCKET_ENV)
    if not path:
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.settimeout(CONNECT_TIMEOUT)
        connection.connect(path)
        payload = json.dumps(_request(argv)).encode()
        socket.send_fds(connection, [_HEADER.pack(len(payload))], [0, 1, 2])
        connection.sendall(payload)
        connection.settimeout(REPLY_TIMEOUT)
        reader = connection.makefile("rb")
        first = _read_message(reader)
    except OSError as error:
        _note(f"warm trainer at {path} not reachable ({error.strerror or error}); starting cold")
        connection.close()
        return None
    if first is None or "refused" in first:
        reason = first["refused"] if first else "it closed the connection"
        _note(f"warm trainer refused this process: {reason}; starting cold")
        connection.close()
        return None
    child = int(first["pid"])
    connection.settimeout(None)

    def forward(signum: int, _frame: Any) -> None:
        try:
            os.killpg(child, signum)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        ended = _read_message(reader)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    connection.close()
    if ended is None:
        print("error: the warm trainer's process ended without an exit status", file=sys.stderr, flush=True)
        return 1
    if "signal" in ended:  # die as the child died, so torchrun reports the same signal
        signum = int(ended["signal"])
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return 128 + signum
    return int(ended["exit"])


def _request(argv: list[str]) -> dict[str, Any]:
    return {
        "argv": list(argv),
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "executable": sys.executable,
        "trainer": source_signature(),
    }


def source_signature() -> list[list[Any]]:
    """Name, size and mtime of each trainer source file: a server started before an edit must refuse."""
    root = Path(__file__).resolve().parent
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(root.glob("*.py"))]


def _read_message(reader) -> dict[str, Any] | None:
    line = reader.readline()
    return json.loads(line) if line else None


def _send(connection: socket.socket, message: dict[str, Any]) -> None:
    try:
        connection.sendall(json.dumps(message).encode() + b"\n")
    except OSError:  # the waiting process is gone: nobody to tell
        pass


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr, flush=True)


# -- the server -------------------------------------------------------------------------------------
def per_process(name: str) -> bool:
    return name in PER_PROCESS_ENV or name.startswith(PER_PROCESS_PREFIXES)


def compatible_env(env: dict[str, str]) -> dict[str, str]:
    """The part of an environment that must match the server's: all but the per-process variables."""
    return {k: v for k, v in env.items() if not per_process(k)}


def refusal(request: dict[str, Any], signature: list[list[Any]], started_env: dict[str, str]) -> str | None:
    """Why a server started with ``started_env`` cannot run ``request`` as the cold process would, or None."""
    if request.get("executable") != sys.executable:
        return f"it runs {sys.executable}, the trial {request.get('executable')}"
    if request.get("trainer") != signature:
        return "the trainer's source files changed since it started"
    ours, theirs = compatible_env(started_env), compatible_env(request.get("env") or {})
    differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    if differ:  # names only: values may be secrets
        shown = ", ".join(differ[:8]) + (f" and {len(differ) - 8} more" if len(differ) > 8 else "")
        return f"the environment differs in {shown}"
    return None


def preload() -> None:
    """Import what every trial process imports, so a forked child finds it loaded."""
    import gc

    gc.disable()
    import transformers

    from trainer import checkpoint, data, modeling, reporting, train  # noqa: F401

    train._import_run_libraries()
    for name in (
        "transformers.models.roberta.modeling_roberta",
        "transformers.models.roberta.tokenization_roberta",
        "transformers.data.data_collator",
        "tokenizers",
        "safetensors.torch",
        "psutil",
        "filelock",
    ):
        __import__(name)
    transformers.HfArgumentParser  # noqa: B018  (a lazy attribute: resolve it here)
    gc.freeze()  # the children share these pages; nothing here is ever collected
    gc.enable()


class Server:
    def __init__(self, path: Path, started_env: dict[str, str], parent: int):
        self.path = path
        self.started_env = started_env  # before the imports, some of which set variables of their own
        self.import_env = {k: v for k, v in os.environ.items() if started_env.get(k) != v}
        self.signature = source_signature()
        self.parent = parent  # the server stops once this process is no longer its parent
        self.children: dict[int, socket.socket] = {}
        self.stopping = False
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.selector: selectors.BaseSelector | None = None
        self.wake: tuple[int, int] = (-1, -1)

    def serve(self) -> None:
        wake_read, wake_write = self.wake = os.pipe()
        os.set_blocking(wake_write, False)
        os.set_blocking(wake_read, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        # Bound under a temporary name and renamed: the socket exists only once the server is ready.
        staging = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        staging.unlink(missing_ok=True)
        self.listener.bind(str(staging))
        os.chmod(staging, 0o600)
        self.listener.listen(64)
        os.replace(staging, self.path)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(wake_read, selectors.EVENT_READ, "wake")
        try:
            while not self.stopping and os.getppid() == self.parent:
                for key, _ in self.selector.select(timeout=1.0):
                    if key.data == "accept":
                        self._accept()
                    else:
                        _drain(wake_read)
                self._reap()
        finally:
            self.listener.close()
            self.path.unlink(missing_ok=True)

    def _stop(self, *_: Any) -> None:
        self.stopping = True

    def _accept(self) -> None:
        try:
            connection, _ = self.listener.accept()
        except BlockingIOError:
            return
        connection.settimeout(5.0)
        fds: list[int] = []
        try:
            header, fds, _flags, _addr = socket.recv_fds(connection, _HEADER.size, 3)
            if len(header) != _HEADER.size or len(fds) != 3:
                raise OSError("a malformed request")
            (length,) = _HEADER.unpack(header)
            request = json.loads(_receive_exactly(connection, length))
        except (OSError, ValueError) as error:
            _close_all(fds)
            _send(connection, {"refused": f"it could not read the request ({error})"})
            connection.close()
            return
        reason = refusal(request, self.signature, self.started_env)
        if reason is not None:
            _close_all(fds)
            _send(connection, {"refused": reason})
            connection.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._become(connection, fds, request)  # never returns
        _close_all(fds)
        self.children[pid] = connection

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            connection = self.children.pop(pid, None)
            if connection is None:
                continue
            if os.WIFSIGNALED(status):  # an exit code the child sent itself; a signal it could not
                _send(connection, {"signal": os.WTERMSIG(status)})
            connection.close()

    def _become(self, connection: socket.socket, fds: list[int], request: dict[str, Any]) -> None:
        """In the forked child: turn into the trial process the request describes, run it, exit."""
        global _forked, _exiting
        import threading

        _forked, _exiting = True, threading.Event()
        code = 1
        try:
            os.setpgid(0, 0)
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt, as in any Python
            self.listener.close()
            self.selector.close()
            _close_all(list(self.wake))
            for other in self.children.values():  # another trial's lifeline must not stay open here
                other.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
            _close_all(fds)
            sys.stdout.reconfigure(line_buffering=True)  # each line out at once, as under torchrun's -u
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            os.environ.update(self.import_env)  # what the cold process's own imports would have set
            sys.argv = list(request["argv"])
            sys.path[0] = request["cwd"]  # as `python -m` puts the working directory first
            _apply_threads()
            _send(connection, {"pid": os.getpid()})
            _watch_lifeline(connection)
            code = _run_trainer(sys.argv[1:])
        except BaseException:  # the child must exit here, never return into the server
            import traceback

            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                _exiting.set()  # the waiting process closes its end once it has the code: not a death
                _send(connection, {"exit": code})
                os._exit(code)


def is_forked() -> bool:
    """Whether this trial process was forked by a warm server (recorded in trial.json)."""
    return _forked


def _run_trainer(args: list[str]) -> int:
    import atexit

    from trainer import train

    try:
        code = train.main(args)
    except SystemExit as stop:  # --help: 0; a text code: 1, as Python would exit
        code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    atexit._run_exitfuncs()  # the libraries' exit hooks, as the cold process runs them
    return code


def _apply_threads() -> None:
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        import torch

        torch.set_num_threads(int(threads))


def _watch_lifeline(connection: socket.socket) -> None:
    import threading

    def watch() -> None:
        try:
            while connection.recv(4096):
                pass
        except OSError:
            pass
        if not _exiting.is_set():
            os.killpg(0, signal.SIGKILL)  # the waiting process is gone: so is this trial

    connection.settimeout(None)
    threading.Thread(target=watch, name="warm-lifeline", daemon=True).start()


def _receive_exactly(connection: socket.socket, length: int) -> bytes:
    chunks, left = [], length
    while left:
        chunk = connection.recv(min(left, 1 << 16))
        if not chunk:
            raise OSError("the request ended early")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.warm", description=__doc__.splitlines()[0])
    parser.add_argument("--socket", type=Path, required=True, help="the Unix socket to listen on")
    parser.add_argument(
        "--parent",
        type=int,
        default=os.getppid(),
        help="the pid of the process that started the server (default: its parent); it stops when that one exits",
    )
    options = parser.parse_args(argv)
    if not options.socket.parent.is_dir():
        parser.error(f"--socket {options.socket}: the directory {options.socket.parent} does not exist")
    for name in [k for k in os.environ if per_process(k)]:
        del os.environ[name]  # a replica's rank or port: the server imports as no particular process
    started_env = dict(os.environ)
    preload()
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        print("error: CUDA was initialised while importing; a forked child cannot use it", file=sys.stderr)
        return 1
    Server(options.socket, started_env, options.parent).serve()
    return 0


if __name__ == "__main__":
    # Run as the importable module, so the children's trainer.warm (is_forked) is this one.
    from trainer import warm

    sys.exit(warm.main())
