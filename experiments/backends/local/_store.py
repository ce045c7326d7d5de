"""Experiment state in Optuna RDB storage: one study per experiment, one Optuna trial per Katib trial.

The study's user attributes hold the spec and the experiment's condition; each Optuna trial's user
attributes hold what Katib keeps on a Trial (name, assignments, condition, observation log, times).
Only the runner writes, except to reconcile the leftovers of a runner that is gone.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from experiments._env import STORAGE_ENV
from experiments.backends._protocol import (
    EXPERIMENT_CREATED,
    REASON_KILLED,
    TRIAL_KILLED,
    TRIAL_RUNNING,
    ExperimentSummary,
    Observation,
    TrialRecord,
)
from experiments.errors import KatibSuiteError, NotFoundError


class ExperimentExistsError(KatibSuiteError):
    """A submit under a name the storage already has."""


class StorageError(KatibSuiteError):
    """The experiment storage cannot be opened, read or written."""


# Optuna needs a DB-API driver per SQLAlchemy dialect; only SQLite's ships with Python.
_DRIVERS = {
    "psycopg": "'psycopg[binary]'",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient (or PyMySQL, with a mysql+pymysql:// URL)",
    "pymysql": "PyMySQL",
}


def _root_cause(error: BaseException) -> BaseException:
    # Optuna wraps SQLAlchemy, which wraps the driver: the innermost error says what went wrong.
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def _sqlite_path(url: str) -> Path | None:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url[len(prefix) :] in ("", ":memory:"):
        return None
    path = url[len(prefix) :].split("?", 1)[0]
    return Path(path.removeprefix("file:"))  # sqlite:///file:PATH?mode=ro&uri=true


def storage_error(url: str, error: BaseException) -> StorageError:
    """One paragraph naming the storage, what failed and the fix, instead of a SQLAlchemy traceback."""
    cause = _root_cause(error)
    # SQLAlchemy appends "(Background on this error at: ...)" and the SQL on further lines.
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else cause.__class__.__name__
    lowered = text.lower()
    sqlite = _sqlite_path(url)
    fix = f"pass a valid SQLAlchemy URL with --storage or ${STORAGE_ENV}"
    if "readonly" in lowered or "read-only" in lowered:
        fix = (
            f"make {sqlite} and its folder writable, " if sqlite else "grant this user write access, "
        ) + f"or point --storage / ${STORAGE_ENV} at a writable database"
    elif sqlite is not None and "unable to open" in lowered and not sqlite.parent.is_dir():
        fix = f"the folder {sqlite.parent} does not exist: create it (mkdir -p {sqlite.parent}) or {fix}"
    elif "locked" in lowered:
        fix = "another process holds a write lock on it; wait for it or stop it, then retry"
    elif isinstance(cause, ImportError) or "db access module" in lowered:
        module = getattr(cause, "name", None) or ""
        dialect = url.split(":", 1)[0]
        package = _DRIVERS.get(module, module or f"the DB-API driver for {dialect}")
        fix = f"install the database driver: pip install {package}"
    elif "connection refused" in lowered or "could not connect" in lowered or "timeout" in lowered:
        fix = f"start the database server or fix the host/port in the URL, then retry; or {fix}"
    return StorageError(f"cannot use the experiment storage {url}: {text}; {fix}.")


def now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def storage_url(storage: str | None, workdir: Path) -> str:
    """``storage`` if given, else ``$KATIB_STORAGE``, else SQLite under ``<workdir>/.katib/``."""
    url = storage or os.environ.get(STORAGE_ENV)
    if url:
        return url
    folder = workdir / ".katib"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'experiments.db'}"


def observations_to_json(observations: Sequence[Observation]) -> list[list[Any]]:
    return [[o.name, o.value, _iso(o.timestamp)] for o in observations]


def observations_from_json(rows: Sequence[Sequence[Any]]) -> tuple[Observation, ...]:
    return tuple(Observation(name, value, _parse_time(ts)) for name, value, ts in rows)


def runner_identity() -> dict[str, Any]:
    import psutil

    me = psutil.Process()
    return {"host": socket.gethostname(), "pid": me.pid, "create_time": me.create_time()}


def runner_alive(identity: Mapping[str, Any] | None) -> bool:
    """Whether the runner that wrote ``identity`` still runs (same host: by pid and start time)."""
    import psutil

    if not identity:
        return False
    if identity.get("host") != socket.gethostname():
        # Another machine sharing the storage: trust its heartbeat, which it refreshes every few seconds.
        beat = _parse_time(identity.get("heartbeat"))
        return beat is not None and (now() - beat).total_seconds() < 120
    try:
        process = psutil.Process(int(identity["pid"]))
        return abs(process.create_time() - float(identity["create_time"])) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, ValueError):
        return False


def stop_runner(name: str, identity: Mapping[str, Any], timeout: float = 60.0) -> None:
    """Stop the live runner of ``name`` as Ctrl-C would (it stops its trials, records them Killed) and wait."""
    import signal

    import psutil

    pid = identity.get("pid")
    if identity.get("host") != socket.gethostname():
        raise KatibSuiteError(
            f"experiment {name!r} is running on {identity.get('host')} (runner pid {pid}); stop it there "
            f"first (kill -INT {pid}), then delete it"
        )
    if pid == os.getpid():
        raise KatibSuiteError(
            f"experiment {name!r} is being run by this process; interrupt its wait() first, then delete it"
        )
    try:
        process = psutil.Process(int(pid))
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except psutil.TimeoutExpired:
            process.kill()  # its trials are then stopped by the caller (Store.kill_leftovers)
            process.wait(10)
    except psutil.NoSuchProcess:
        pass
    except psutil.AccessDenied:
        raise KatibSuiteError(
            f"experiment {name!r} is run by another user's process (pid {pid}); ask them to stop it"
        ) from None


class Store:
    """The Optuna storage behind the local backend, with Katib-shaped reads and writes."""

    def __init__(self, url: str):
        self.url = url
        self._storage = None

    @property
    def storage(self):
        if self._storage is None:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            kwargs: dict[str, Any] = {}
            if self.url.startswith("sqlite"):
                # Readers (status from another shell) and the single writer share the file; wait, don't fail.
                kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
            try:
                self._storage = optuna.storages.RDBStorage(self.url, **kwargs)
            except Exception as error:  # SQLAlchemy raises many types; the user needs the URL and the fix.
                raise storage_error(self.url, error) from None
        return self._storage

    # -- studies -------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        import optuna

        return sorted(optuna.study.get_all_study_names(self.storage))

    def exists(self, name: str) -> bool:
        return name in self.names()

    def require(self, name: str) -> None:
        if not self.exists(name):
            known = ", ".join(self.names()) or "none"
            raise NotFoundError(
                f"no experiment named {name!r} in {self.url} (known: {known}); "
                "check the name with `katib experiment list` or pass the right --storage."
            )

    def create_study(self, name: str, direction: str, sampler):
        import optuna

        if self.exists(name):
            raise ExperimentExistsError(
                f"an experiment named {name!r} already exists in {self.url}; continue it with "
                f"`katib experiment resume {name}`, delete it with `katib experiment delete {name}`, "
                "or submit under another --name."
            )
        return optuna.create_study(
            study_name=name, storage=self.storage, sampler=sampler, direction=direction
        )

    def load_study(self, name: str, sampler=None):
        import optuna

        self.require(name)
        return optuna.load_study(study_name=name, storage=self.storage, sampler=sampler)

    def delete(self, name: str) -> None:
        import optuna

        self.require(name)
        optuna.delete_study(study_name=name, storage=self.storage)

    def study_attrs(self, name: str) -> dict[str, Any]:
        study_id = self.storage.get_study_id_from_name(name)
        return dict(self.storage.get_study_user_attrs(study_id))

    def set_study_attrs(self, name: str, **attrs: Any) -> None:
        study_id = self.storage.get_study_id_from_name(name)
        for key, value in _condition_last(attrs):
            self.storage.set_study_user_attr(study_id, key, _jsonable(value))

    # -- trials --------------------------------------------------------------------------------------
    def frozen_trials(self, name: str) -> list:
        study_id = self.storage.get_study_id_from_name(name)
        return [
            t for t in self.storage.get_all_trials(study_id, deepcopy=False) if "katib_trial" in t.user_attrs
        ]

    def set_trial_attrs(self, trial_id: int, **attrs: Any) -> None:
        for key, value in _condition_last(attrs):
            self.storage.set_trial_user_attr(trial_id, key, _jsonable(value))

    def records(self, name: str, metric_names: Sequence[str]) -> list[TrialRecord]:
        return [to_record(t, metric_names) for t in self.frozen_trials(name)]

    def summaries(self) -> list[ExperimentSummary]:
        import optuna

        out = []
        for summary in optuna.get_all_study_summaries(self.storage, include_best_trial=False):
            attrs = summary.user_attrs
            trials = [t for t in self.frozen_trials(summary.study_name)]
            out.append(
                ExperimentSummary(
                    name=summary.study_name,
                    condition=attrs.get("condition", EXPERIMENT_CREATED),
                    reason=attrs.get("reason", ""),
                    trials=len(trials),
                    succeeded=sum(1 for t in trials if t.user_attrs.get("condition") == "Succeeded"),
                    best_value=attrs.get("best_value"),
                    created=_parse_time(attrs.get("created")),
                    backend="local",
                )
            )
        return sorted(out, key=lambda s: s.name)

    def reconcile(self, name: str) -> int:
        """Settle what a runner that is gone left unfinished: adopt, record or mark Killed (``_reconcile``).

        Returns how many trials were unfinished. Does nothing while the runner is alive.
        """
        from experiments.backends.local._reconcile import reconcile

        return reconcile(self, name)

    def kill_leftovers(self, name: str, why: str) -> int:
        """Stop every unfinished trial's processes and mark it Killed (Optuna: FAIL), e.g. before a delete."""
        import optuna

        from experiments.backends.local._procs import TrialProcesses, kill_orphans

        stamp = now()
        count = 0
        study_id = self.storage.get_study_id_from_name(name)
        for trial in self.storage.get_all_trials(study_id, deepcopy=False):
            if trial.state.is_finished() or trial.state == optuna.trial.TrialState.WAITING:
                continue
            attrs = trial.user_attrs
            if attrs.get("host") == socket.gethostname():
                kill_orphans(attrs.get("processes"))
                if attrs.get("replicas") and attrs.get("log_dir"):
                    TrialProcesses(Path(attrs["log_dir"]), attrs["replicas"], attrs["primary"]).kill()
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            self.set_trial_attrs(
                trial_id,
                condition=TRIAL_KILLED,
                reason=REASON_KILLED,
                message=f"{why}; resume runs a new trial in its place",
                completion_time=_iso(stamp),
                interrupted=True,
            )
            self.storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
            count += 1
        return count


def to_record(trial, metric_names: Sequence[str]) -> TrialRecord:
    from experiments.collector import summarize

    attrs = trial.user_attrs
    observations = observations_from_json(attrs.get("observations", []))
    condition = attrs.get("condition", TRIAL_RUNNING)
    log_dir = attrs.get("log_dir")
    return TrialRecord(
        name=attrs["katib_trial"],
        parameters=dict(attrs.get("parameters", {})),
        condition=condition,
        reason=attrs.get("reason", ""),
        message=attrs.get("message", ""),
        metrics=tuple(summarize(observations, metric_names)) if observations else (),
        observations=observations,
        start_time=_parse_time(attrs.get("start_time")),
        completion_time=_parse_time(attrs.get("completion_time")),
        log_dir=Path(log_dir) if log_dir else None,
        output_dir=attrs.get("output_dir"),
    )


def _condition_last(attrs: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Each attribute is its own transaction in Optuna's storage, and readers trust ``condition``: written
    last, a runner killed half-way leaves the old condition (which reconcile then settles), never a
    finished condition without its observations, times or message."""
    return sorted(attrs.items(), key=lambda item: item[0] == "condition")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    # Optuna stores attrs as JSON; fail here, naming the value, rather than deep inside SQLAlchemy.
    json.dumps(value)
    return value
