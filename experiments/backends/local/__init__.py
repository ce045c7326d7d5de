"""The local backend: Katib's semantics on one machine — Optuna suggests, trials run as local processes.

backend = LocalBackend()                       # SQLite under ./.katib/, or $KATIB_STORAGE
handle = backend.submit(load_experiment("experiments/quickstart.yaml"))
status = handle.wait(progress=print)           # drives the loop here; Ctrl-C leaves it resumable
backend.resume(handle.name, max_trial_count=24).wait()
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from experiments.backends._protocol import (
    EXPERIMENT_CREATED,
    EXPERIMENT_RESTARTING,
    EXPERIMENT_RUNNING,
    REASON_KILLED,
    ExperimentStatus,
    ExperimentSummary,
    ProgressCallback,
    TrialRecord,
)
from experiments.backends.local._book import label_study
from experiments.backends.local._runner import Runner, build_status, metric_names, optimal
from experiments.backends.local._store import (
    ExperimentExistsError,
    Store,
    now,
    runner_alive,
    stop_runner,
    storage_url,
)
from experiments.backends.local._trial import UnsupportedTrialError, check_supported, plan_trial
from experiments.errors import KatibSuiteError, NotFoundError
from experiments.spec import Experiment

__all__ = ["ExperimentExistsError", "LocalBackend", "LocalExperiment", "UnsupportedTrialError"]


class LocalExperiment:
    """A handle on one experiment in the local backend's storage."""

    def __init__(self, backend: LocalBackend, name: str):
        self.backend = backend
        self.name = name
        self._experiment: Experiment | None = None

    @property
    def experiment(self) -> Experiment:
        if self._experiment is None:
            from experiments.spec import parse_experiment

            self._experiment = parse_experiment(self.backend.store.study_attrs(self.name)["spec"])
        return self._experiment

    def wait(
        self, progress: ProgressCallback | None = None, timeout: float | None = None
    ) -> ExperimentStatus:
        """Run the experiment here until it ends; if another live runner drives it, follow that one."""
        store = self.backend.store
        store.reconcile(self.name)
        attrs = store.study_attrs(self.name)
        condition = attrs.get("condition", EXPERIMENT_CREATED)
        if condition in (EXPERIMENT_CREATED, EXPERIMENT_RESTARTING):
            return Runner(store, self.name, self.experiment, self.backend.workdir_for(attrs)).run(
                progress, timeout
            )
        if condition == EXPERIMENT_RUNNING:
            return self._follow(progress, timeout)
        status = self.status()
        if progress is not None:
            progress(status)
        return status

    def _follow(self, progress: ProgressCallback | None, timeout: float | None) -> ExperimentStatus:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status()
            if progress is not None:
                progress(status)
            if status.condition != EXPERIMENT_RUNNING or (
                deadline is not None and time.monotonic() > deadline
            ):
                return status
            time.sleep(1.0)

    def status(self) -> ExperimentStatus:
        store = self.backend.store
        store.reconcile(self.name)
        attrs = store.study_attrs(self.name)
        return build_status(store, self.name, self.experiment, self._records(), attrs)

    def trials(self) -> Sequence[TrialRecord]:
        self.backend.store.reconcile(self.name)
        return self._records()

    def optimal_trial(self) -> TrialRecord | None:
        return optimal(self.experiment, self.trials())

    def _records(self) -> list[TrialRecord]:
        return self.backend.store.records(self.name, metric_names(self.experiment))

    def __repr__(self) -> str:
        return f"LocalExperiment(name={self.name!r}, storage={self.backend.store.url!r})"


class LocalBackend:
    """Backend protocol on this machine, with its state in Optuna RDB storage."""

    name = "local"

    def __init__(self, storage: str | None = None, workdir: Path | None = None):
        self.workdir = Path(workdir or Path.cwd()).resolve()
        self.store = Store(storage_url(storage, self.workdir))

    def workdir_for(self, attrs: Mapping) -> Path:
        # Trial commands may use relative paths: resume in the folder the experiment was submitted from.
        stored = attrs.get("workdir")
        return Path(stored) if stored and Path(stored).is_dir() else self.workdir

    def submit(self, experiment: Experiment, *, name: str | None = None) -> LocalExperiment:
        from experiments.backends.local._suggest import Suggester
        from experiments.spec import to_dict

        if name:
            experiment = _renamed(experiment, name)
        # Unsupported algorithms and bad settings fail here, not mid-run; and before the dry-run render below,
        # which for a NAS algorithm (enas, darts) would only complain about its architecture references.
        suggester = Suggester(experiment)
        self._check_runnable(experiment)
        direction = experiment.objective.type
        study = self.store.create_study(experiment.name, direction, suggester.sampler)
        label_study(study, experiment)
        self.store.set_study_attrs(
            experiment.name,
            spec=to_dict(experiment),
            condition=EXPERIMENT_CREATED,
            reason="ExperimentCreated",
            message="Experiment is created",
            created=now().isoformat(),
            backend="local",
            workdir=str(self.workdir),
        )
        handle = LocalExperiment(self, experiment.name)
        handle._experiment = experiment
        return handle

    def _check_runnable(self, experiment: Experiment) -> None:
        from experiments.spec import render_trial

        check_supported(experiment)
        if experiment.early_stopping is not None:
            from experiments.backends.local._medianstop import make_early_stopping

            make_early_stopping(experiment.early_stopping, experiment.objective)  # bad names/settings: here
        # Render and plan one trial now so a template the local backend cannot run fails at submit.
        sample = {p.name: _sample_value(p) for p in experiment.parameters}
        rendered = render_trial(
            experiment, sample, f"{experiment.name}-dryrun00", namespace=experiment.namespace or "default"
        )
        plan_trial(experiment, rendered, f"{experiment.name}-dryrun00", self.workdir / ".katib" / "dryrun")

    def get(self, name: str) -> LocalExperiment:
        self.store.require(name)
        return LocalExperiment(self, name)

    def resume(
        self,
        name: str,
        *,
        max_trial_count: int | None = None,
        parallel_trial_count: int | None = None,
        max_failed_trial_count: int | None = None,
    ) -> LocalExperiment:
        from experiments.spec import to_dict
        from experiments.spec._lifecycle import resume_experiment

        handle = self.get(name)
        self.store.reconcile(name)
        attrs = self.store.study_attrs(name)
        condition, reason = attrs.get("condition", EXPERIMENT_CREATED), attrs.get("reason", "")
        experiment = handle.experiment
        if condition == EXPERIMENT_RUNNING and runner_alive(attrs.get("runner")):
            pid = (attrs.get("runner") or {}).get("pid")
            raise KatibSuiteError(
                f"experiment {name!r} is running now (runner pid {pid}); wait for it or stop it first."
            )
        # Katib's resume rules live in the spec (one rule for both backends).
        updated = resume_experiment(
            experiment,
            finished=condition not in (EXPERIMENT_CREATED, EXPERIMENT_RESTARTING),
            reason=reason,
            interrupted=reason == REASON_KILLED,
            max_trial_count=max_trial_count,
            parallel_trial_count=parallel_trial_count,
            max_failed_trial_count=max_failed_trial_count,
        )
        self.store.set_study_attrs(
            name,
            spec=to_dict(updated),
            condition=EXPERIMENT_RESTARTING,
            reason="ExperimentRestarting",
            message="Experiment is restarting",
            completion_time=None,
        )
        resumed = LocalExperiment(self, name)
        resumed._experiment = updated
        return resumed

    def list(self) -> Sequence[ExperimentSummary]:
        for name in self.store.names():
            self.store.reconcile(name)
        return self.store.summaries()

    def delete(self, name: str) -> None:
        """Delete the experiment's records and its folder ``.katib/<name>/``, stopping it first if it runs."""
        self.store.require(name)
        self.store.reconcile(name)
        attrs = self.store.study_attrs(name)
        folder = self._own_folder(name, attrs)  # refuse before anything is stopped or removed
        if attrs.get("condition") == EXPERIMENT_RUNNING and runner_alive(attrs.get("runner")):
            stop_runner(name, attrs.get("runner") or {})
        # Trials adopted from a dead runner, or left by the runner just stopped: no process outlives them.
        self.store.kill_leftovers(name, "the experiment is being deleted")
        self.store.delete(name)
        if folder is not None:
            if folder.is_symlink():
                folder.unlink()  # the link only: what it points to is not the experiment's
            else:
                shutil.rmtree(folder)

    def _own_folder(self, name: str, attrs: Mapping) -> Path | None:
        """``.katib/<name>`` if it exists and is inside ``.katib/``; anything else is refused (never followed)."""
        root = (self.workdir_for(attrs) / ".katib").resolve()
        folder = root / name
        if not (folder.is_dir() or folder.is_symlink()):
            return None
        parent = folder.parent.resolve()
        if parent != root or folder.name != name or name in ("", ".", ".."):
            raise KatibSuiteError(
                f"refusing to delete {folder}: it is not a folder of its own under {root}; "
                "remove it by hand if it is really this experiment's"
            )
        return folder

    def logs(self, name: str, trial: str) -> Mapping[str, list[str]]:
        handle = self.get(name)
        for record in handle.trials():
            if record.name == trial:
                if record.log_dir is None or not record.log_dir.is_dir():
                    return {}
                # Replica logs by replica (master-0, worker-0, ...); a File collector's metrics file as "metrics".
                # Text lines, as the cluster backend returns a pod's log (the protocol).
                return {
                    p.stem: p.read_text(encoding="utf-8", errors="replace").splitlines()
                    for p in sorted(record.log_dir.glob("*.log"))
                }
        known = ", ".join(t.name for t in handle.trials()) or "none"
        raise NotFoundError(
            f"experiment {name!r} has no trial {trial!r} (trials: {known}); list them with `katib experiment trials {name}`."
        )


def _renamed(experiment: Experiment, name: str) -> Experiment:
    """The experiment under ``name``, which must pass every rule the spec applies to ``metadata.name``."""
    from experiments.spec import InvalidExperimentError, validate_experiment

    renamed = dataclasses.replace(experiment, name=name)
    problems = [p for p in validate_experiment(renamed, backend="local") if p.path == "metadata.name"]
    if problems:
        raise InvalidExperimentError(f"{experiment.name!r} renamed {name!r}", problems)
    return renamed


def _sample_value(parameter) -> str:
    space = parameter.feasible_space
    if space.list:
        return str(space.list[0])
    return str(space.min if space.min is not None else "0")
