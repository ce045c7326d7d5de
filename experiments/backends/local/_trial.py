"""One trial as local processes: the rendered trialSpec's replicas, their logs, their metrics.

A PyTorchJob's every replica (Master ×1, Worker ×N) becomes one process with the environment the
Training Operator gives its pod; a batch/v1 Job is one process. Each runs in its own session so the
whole tree (torchrun and its workers) can be stopped at once.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.backends._protocol import Observation
from experiments.errors import KatibSuiteError
from experiments.spec import Experiment
from experiments.spec._lifecycle import output_dir_from_argv

log = logging.getLogger("experiments.backends.local")

LOCAL_FILE_METRICS = "metrics.log"
_NOTES_GIVEN: set[str] = set()


class UnsupportedTrialError(KatibSuiteError):
    """A trial template or collector the local backend cannot run."""


def note_once(message: str) -> None:
    if message not in _NOTES_GIVEN:
        _NOTES_GIVEN.add(message)
        log.warning(message)


@dataclass(frozen=True)
class ReplicaPlan:
    """One local process: a replica of the trial's job."""

    name: str  # e.g. master-0, worker-1 (Training Operator's pod suffixes)
    argv: tuple[str, ...]
    env: Mapping[str, str]
    primary: bool


@dataclass(frozen=True)
class TrialPlan:
    replicas: tuple[ReplicaPlan, ...]
    metrics_path: Path  # where the primary's metrics appear (its log, or the remapped File path)
    output_dir: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    active_deadline_seconds: int | None = None  # runPolicy (PyTorchJob) or spec (Job): enforced locally

    @property
    def primary(self) -> str:
        return next(r.name for r in self.replicas if r.primary)

    @property
    def processes(self) -> int:
        return sum(int(r.env.get("PET_NPROC_PER_NODE", "1")) for r in self.replicas)


def check_supported(experiment: Experiment) -> None:
    """Refuse, at submit, what cannot run locally — before any trial starts. The rules are the spec's
    (``validate --backend local`` reports the same problems), not a second copy of them."""
    from experiments.spec._local_support import local_problems

    problems = local_problems(experiment)
    if problems:
        raise UnsupportedTrialError("; ".join(str(p) for p in problems))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pod_containers(pod_template: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(((pod_template or {}).get("spec") or {}).get("containers") or [])


def _container(containers: Sequence[Mapping[str, Any]], name: str | None, where: str) -> Mapping[str, Any]:
    if name is None and containers:
        return containers[0]
    for container in containers:
        if container.get("name") == name:
            return container
    names = [c.get("name") for c in containers]
    raise UnsupportedTrialError(
        f"{where} has no container named {name!r} (containers: {names}); fix the trialSpec."
    )


def _container_env(container: Mapping[str, Any], where: str) -> tuple[dict[str, str], list[str]]:
    env: dict[str, str] = {}
    notes = []
    for entry in container.get("env") or []:
        if "value" in entry:
            env[str(entry["name"])] = str(entry["value"])
        elif "valueFrom" in entry:
            notes.append(
                f"{where}: env {entry.get('name')} uses valueFrom, which has no local source; skipped"
            )
    if container.get("envFrom"):
        notes.append(f"{where}: envFrom has no local source (ConfigMap/Secret); skipped")
    return env, notes


def _argv(container: Mapping[str, Any], where: str) -> list[str]:
    command = [str(c) for c in container.get("command") or []]
    if not command:
        raise UnsupportedTrialError(
            f"{where} has no `command`; locally there is no image entrypoint to fall back on. "
            "Set command (e.g. [torchrun, -m, trainer.train]) in the trialSpec."
        )
    return command + [str(a) for a in container.get("args") or []]


def _remap(values: Sequence[str], old: str, new: str) -> list[str]:
    return [v.replace(old, new) for v in values]


_output_dir = output_dir_from_argv  # the spec's one definition of a trial's output location


def _local_nproc(value: Any) -> int:
    text = str(value if value is not None else "auto")
    # auto/cpu/gpu mean "one per device" on a node; locally the trial is one node per replica on the CPU.
    return int(text) if text.isdigit() and int(text) > 0 else 1


def plan_trial(
    experiment: Experiment, rendered: Mapping[str, Any], trial_name: str, log_dir: Path
) -> TrialPlan:
    """Turn a rendered trial manifest into the local processes that run it."""
    spec = rendered.get("spec") or {}
    kind = rendered.get("kind")
    template = experiment.trial_template
    collector = experiment.metrics_collector
    notes: list[str] = []
    base_env = {"PYTHONUNBUFFERED": "1", "KATIB_TRIAL_NAME": trial_name}

    pods: list[tuple[str, Mapping[str, Any], dict[str, str], bool]] = []
    if kind == "PyTorchJob":
        replica_specs = spec.get("pytorchReplicaSpecs") or {}
        unknown = sorted(set(replica_specs) - {"Master", "Worker"})
        if unknown:
            raise UnsupportedTrialError(
                f"pytorchReplicaSpecs may only hold Master and Worker; got: {unknown}"
            )
        masters = (
            int((replica_specs.get("Master") or {}).get("replicas", 1)) if "Master" in replica_specs else 0
        )
        workers = (
            int((replica_specs.get("Worker") or {}).get("replicas", 1)) if "Worker" in replica_specs else 0
        )
        nnodes = masters + workers
        nproc_text = str(spec.get("nprocPerNode", "auto"))
        nproc = _local_nproc(nproc_text)
        world = nnodes * int(nproc_text) if nproc_text.isdigit() else nnodes
        port = str(free_port())
        job_env = {
            "MASTER_ADDR": "127.0.0.1",
            "PET_MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "PET_MASTER_PORT": port,
            "PET_NNODES": str(nnodes),
            "PET_NPROC_PER_NODE": str(nproc),
            "WORLD_SIZE": str(world),
        }
        rank = 0
        for role, count in (("Master", masters), ("Worker", workers)):
            pod = (replica_specs.get(role) or {}).get("template") or {}
            for index in range(count):
                # job-role=master is the Master, or Worker 0 when there is no Master.
                primary = role == "Master" or (masters == 0 and index == 0)
                env = {**job_env, "RANK": str(rank), "PET_NODE_RANK": str(rank)}
                pods.append((f"{role.lower()}-{index}", pod, env, primary))
                rank += 1
        container_name = template.primary_container_name or "pytorch"
    else:
        pods.append(("job-0", (spec.get("template") or {}), {}, True))
        container_name = template.primary_container_name

    metrics_path = log_dir / f"{next(p[0] for p in pods if p[3])}.log"
    file_path = collector.file_path or "/var/log/katib/metrics.log"
    local_file = log_dir / LOCAL_FILE_METRICS
    if collector.kind == "File":
        metrics_path = local_file

    replicas = []
    output_dir = None
    for replica, pod, env, primary in pods:
        where = f"{kind} replica {replica}"
        container = _container(_pod_containers(pod), container_name, where)
        container_env, env_notes = _container_env(container, where)
        notes.extend(env_notes)
        argv = _argv(container, where)
        full_env = {**container_env, **base_env, **env}
        if collector.kind == "File":
            # The trial writes Katib's metrics file; give each local trial its own copy of that path.
            argv = _remap(argv, file_path, str(local_file))
            full_env = {k: v.replace(file_path, str(local_file)) for k, v in full_env.items()}
        if primary:
            output_dir = _output_dir(argv)
        replicas.append(ReplicaPlan(replica, tuple(argv), full_env, primary))
    deadline, policy_notes = _run_policy(kind, spec)
    notes.extend(policy_notes)
    return TrialPlan(tuple(replicas), metrics_path, output_dir, tuple(notes), deadline)


# runPolicy / restartPolicy fields a single machine has no use for; each is named once per run, not honoured.
_IGNORED_RUN_POLICY = {
    "backoffLimit": "a failed replica fails the trial at once (no pod restarts)",
    "cleanPodPolicy": "every replica process is stopped when the trial ends",
    "ttlSecondsAfterFinished": "logs are kept under .katib/ until `katib experiment delete`",
    "suspend": "trials start when the runner starts them",
    "schedulingPolicy": "there is no scheduler (gang scheduling, queues) locally",
}


def _run_policy(kind: Any, spec: Mapping[str, Any]) -> tuple[int | None, list[str]]:
    """activeDeadlineSeconds (enforced: the trial fails with DeadlineExceeded), and notes on what is ignored."""
    policy = (spec.get("runPolicy") or {}) if kind == "PyTorchJob" else spec
    notes = [
        f"{kind} runPolicy.{key} is ignored by the local backend: {why}"
        for key, why in _IGNORED_RUN_POLICY.items()
        if kind == "PyTorchJob" and policy.get(key) is not None
    ]
    if kind != "PyTorchJob" and spec.get("backoffLimit") is not None:
        notes.append(
            f"Job backoffLimit is ignored by the local backend: {_IGNORED_RUN_POLICY['backoffLimit']}"
        )
    restarts = {
        str(r.get("restartPolicy"))
        for r in (spec.get("pytorchReplicaSpecs") or {}).values()
        if isinstance(r, Mapping) and r.get("restartPolicy") not in (None, "Never")
    }
    if restarts:
        notes.append(
            f"restartPolicy {', '.join(sorted(restarts))} is ignored by the local backend: a replica that "
            "exits non-zero fails the trial (as restartPolicy Never would)"
        )
    deadline = policy.get("activeDeadlineSeconds")
    try:
        seconds = int(deadline) if deadline is not None else None
    except (TypeError, ValueError):
        raise UnsupportedTrialError(
            f"activeDeadlineSeconds must be a whole number of seconds; got: {deadline!r}"
        ) from None
    if seconds is not None and seconds <= 0:
        raise UnsupportedTrialError(f"activeDeadlineSeconds must be > 0; got: {deadline!r}")
    return seconds, notes


class MetricsTail:
    """Follows the primary's metrics source as it grows and parses complete lines with Katib's rules."""

    def __init__(self, experiment: Experiment, path: Path):
        from experiments.collector import LineCollector, metric_names

        self.metric_names = metric_names(experiment.objective)  # the one definition
        self.collector = LineCollector(experiment.metrics_collector, self.metric_names)
        self.path = path
        self._offset = 0
        self._partial = b""
        self.error: str | None = None  # the first line Katib's collector would fail the trial on

    def read(self, final: bool = False) -> list[Observation]:
        try:
            with open(self.path, "rb") as source:
                source.seek(self._offset)
                chunk = source.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if final and self._partial:
            lines.append(self._partial)
            self._partial = b""
        found: list[Observation] = []
        for line in lines:
            try:
                found.extend(self.collector.feed(line.decode("utf-8", errors="replace")))
            except KatibSuiteError as error:
                self.error = self.error or str(error)
        return found


def tail_lines(path: Path, count: int = 20) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    return "\n".join(lines[-count:])


# torchrun's own report of a failed child: true but never the reason (that is in the child's output above it).
_LAUNCHER_NOISE = ("ChildFailedError", "torch.distributed.elastic")
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Failed)): ?(.*)$")


def failure_cause(path: Path) -> str | None:
    """The line of a failed replica's log that says why: the trainer's one-line ``error: ...`` (the
    project's convention for bad input), else the last Python exception that is not torchrun's
    ChildFailedError wrapper. None when the log names no cause (e.g. the process was OOM-killed)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except (FileNotFoundError, IsADirectoryError):
        return None
    errors = [line.strip() for line in lines if line.startswith("error: ")]
    if errors:
        return errors[-1][len("error: ") :]
    for line in reversed(lines):
        match = _EXCEPTION_LINE.match(line.strip())
        if match and not any(noise in line for noise in _LAUNCHER_NOISE):
            return line.strip()
    return None
