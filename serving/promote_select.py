"""Which trial to promote, and where its checkpoint is: Katib's choice through the one ranking.

Katib may name an EarlyStopped trial optimal; the trainer never wrote a checkpoint for it, so the best
ranked trial whose checkpoint is complete (``trial.json`` exists: the trainer writes it last) is taken,
and the selection says which and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.backends._protocol import TrialRecord
from experiments.ranking import objective_value, rank_trials
from experiments.spec import Experiment
from serving.promote_errors import PromoteError, TrialNotFoundError
from serving.promote_files import s3_client
from trainer import s3
from trainer.checkpoint import TRIAL_JSON


@dataclass(frozen=True)
class Selection:
    """The trial chosen for promotion, its checkpoint location and the reason it was chosen."""

    experiment: Experiment
    trial: TrialRecord
    checkpoint: str  # local absolute path or s3:// prefix, without a trailing slash
    reason: str
    katib_optimal: str | None  # the trial Katib names optimal (may differ from ``trial``)
    objective_value: float | None
    backend: str


def open_experiment(name: str, backend: str = "local", storage: str | None = None, **cluster: Any) -> Any:
    """The experiment's handle from the backend registry. ``cluster``: namespace / context / kubeconfig for
    ``backend="cluster"`` (unset: where this directory submitted it, else the kube context's namespace)."""
    from experiments.backends import get_backend

    options: dict[str, Any] = {"storage": storage} if storage else {}
    if backend == "cluster":
        options.update({k: v for k, v in cluster.items() if v is not None}, workdir=Path.cwd())
    return get_backend(backend, **options).get(name)


def checkpoint_location(handle: Any, record: TrialRecord) -> str:
    """The trial's rendered ``--output_dir`` as an absolute path or s3:// prefix.

    A relative output_dir (``runs/quickstart/<trial>``) is relative to the folder the local backend ran the
    trial in, which it keeps as the experiment's workdir; other backends render absolute (s3://) URIs.
    """
    if not record.output_dir:
        raise PromoteError(
            f"trial {record.name!r} has no --output_dir in its rendered command, so it saved no checkpoint; "
            "add --output_dir=<path or s3://bucket/prefix>/${trialParameters.trialName} to the trial template"
        )
    location = record.output_dir.rstrip("/")
    if s3.is_s3_uri(location) or Path(location).is_absolute():
        return location
    backend = getattr(handle, "backend", None)
    base = Path.cwd()
    if backend is not None and hasattr(backend, "workdir_for"):
        base = backend.workdir_for(backend.store.study_attrs(handle.name))
    return str((base / location).resolve())


def checkpoint_complete(location: str) -> bool:
    """True when the checkpoint's ``trial.json`` exists (the trainer writes it last)."""
    if not s3.is_s3_uri(location):
        return (Path(location) / TRIAL_JSON).is_file()
    from botocore.exceptions import ClientError

    bucket, prefix = s3.parse_s3_uri(location)
    key = s3.join_key(prefix, TRIAL_JSON)
    with s3.s3_errors(location, "read"):
        try:
            s3_client().head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
    return True


def _describe(record: TrialRecord, experiment: Experiment) -> str:
    objective = experiment.objective
    value = objective_value(record, objective)
    strategy = objective.strategy_for(objective.objective_metric_name)
    shown = "unavailable" if value is None else f"{value:g}"
    return f"{objective.objective_metric_name}={shown} ({strategy})"


def select_trial(handle: Any, trial_name: str | None = None, backend: str = "local") -> Selection:
    experiment = handle.experiment
    records = list(handle.trials())
    ranked = rank_trials(records, experiment.objective)
    optimal = ranked[0].name if ranked else None
    if trial_name is not None:
        return _by_name(handle, experiment, records, trial_name, optimal, backend)
    if not ranked:
        raise TrialNotFoundError(
            f"no trial of experiment {experiment.name!r} has a value for "
            f"{experiment.objective.objective_metric_name} yet; wait for trials to finish "
            f"(`katib experiment status {experiment.name}`) or pick one with --trial"
        )
    skipped: list[str] = []
    for record in ranked:
        location = checkpoint_location(handle, record) if record.output_dir else None
        if location is not None and checkpoint_complete(location):
            if not skipped:
                reason = f"Katib's optimal trial ({_describe(record, experiment)})"
            else:
                reason = (
                    "; ".join(skipped)
                    + f"; {record.name} is the best trial with a complete checkpoint ({_describe(record, experiment)})"
                )
            return Selection(
                experiment, record, location, reason, optimal,
                objective_value(record, experiment.objective), backend,
            )  # fmt: skip
        where = f"no {TRIAL_JSON} in {location}" if location else "no --output_dir"
        role = "Katib's optimal trial" if record.name == optimal else "trial"
        skipped.append(f"{role} {record.name} is {record.condition} and has no complete checkpoint ({where})")
    raise TrialNotFoundError(
        f"no ranked trial of experiment {experiment.name!r} has a complete checkpoint: "
        + "; ".join(skipped)
        + ". Let a trial finish, or check the trial template's --output_dir"
    )


def _by_name(
    handle: Any,
    experiment: Experiment,
    records: list[TrialRecord],
    name: str,
    optimal: str | None,
    backend: str,
) -> Selection:
    record = next((r for r in records if r.name == name), None)
    if record is None:
        known = ", ".join(r.name for r in records) or "none"
        raise TrialNotFoundError(
            f"experiment {experiment.name!r} has no trial {name!r} (trials: {known}); "
            f"list them with `katib experiment trials {experiment.name}`"
        )
    location = checkpoint_location(handle, record)
    if not checkpoint_complete(location):
        raise TrialNotFoundError(
            f"trial {name!r} ({record.condition}) has no complete checkpoint: no {TRIAL_JSON} in {location}; "
            "the trial did not finish saving. Pick another with --trial, or omit --trial for the best one"
        )
    reason = f"chosen with --trial ({_describe(record, experiment)})"
    if optimal and optimal != name:
        reason += f"; Katib's optimal trial is {optimal}"
    value = objective_value(record, experiment.objective)
    return Selection(experiment, record, location, reason, optimal, value, backend)
