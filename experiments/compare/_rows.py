"""Trials as comparison rows: one plain record per trial, built from the backend protocol's TrialRecords.

Everything here reads ``TrialRecord`` (experiments.backends._protocol), so local and cluster experiments
give the same rows. The objective, the best row and every order by a metric come from
experiments.ranking; nothing here compares objective values itself.

    views = load(["lr-tpe", "lr-random"], backend="local")
    for row in views[0].rows: print(row.trial, row.status, row.objective)
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from experiments.backends._protocol import (
    REASON_KILLED,
    TRIAL_EARLY_STOPPED,
    TRIAL_FAILED,
    TRIAL_FINISHED,
    TRIAL_KILLED,
    TRIAL_METRICS_UNAVAILABLE,
    TRIAL_SUCCEEDED,
    TrialRecord,
)
from experiments.errors import UsageError
from experiments.spec import Experiment, Objective

# Sort keys that are not metrics or parameters.
DURATION = "duration"
TRIAL_SECONDS = "trial-seconds"


@dataclass(frozen=True)
class TrialRow:
    """One trial as ``katib experiment compare`` shows it. Plain values only (JSON-able via ``to_dict``)."""

    experiment: str
    trial: str
    number: int  # creation order within its experiment, from 1
    condition: str  # Katib's trial condition
    reason: str
    status: str  # what a person reads: "EarlyStopped at step 3", "Failed", ...
    detail: str  # why, in one line: the trainer's error, the collector's reason; "" when nothing to say
    parameters: Mapping[str, str]
    objective_metric: str
    objective: str | None  # the value the metricStrategy picks, as reported; None when unavailable
    objective_value: float | None
    metrics: Mapping[str, str | None]  # additional metrics, each by its own metricStrategy
    steps: int  # how many times the objective was reported
    curve: tuple[float | None, ...]  # the objective at each report (None: not a number)
    duration_s: float | None
    processes: int
    trial_seconds: float | None  # duration x processes: the compute the trial used
    rank: int | None  # 1 = the optimal trial; None: Katib could not rank it
    start_time: datetime | None = None
    completion_time: datetime | None = None

    @property
    def best(self) -> bool:
        return self.rank == 1

    @property
    def interrupted(self) -> bool:
        """Killed by Ctrl-C or a dead runner; resume ran a new trial in its place."""
        return self.condition == TRIAL_KILLED and self.reason == REASON_KILLED

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["parameters"] = dict(self.parameters)
        out["metrics"] = dict(self.metrics)
        out["curve"] = list(self.curve)
        out["best"] = self.best
        for key in ("start_time", "completion_time"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        return out


@dataclass(frozen=True)
class ExperimentView:
    """One experiment's rows with what is needed to read them: its spec, its records, its state."""

    name: str
    experiment: Experiment
    records: tuple[TrialRecord, ...]
    rows: tuple[TrialRow, ...]
    condition: str = ""
    reason: str = ""
    backend: str = "local"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def objective(self) -> Objective:
        return self.experiment.objective

    @property
    def parameter_names(self) -> list[str]:
        names = [p.name for p in self.experiment.parameters]
        return names or sorted({k for r in self.rows for k in r.parameters})

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(self.objective.additional_metric_names)

    @property
    def algorithm(self) -> str:
        algorithm = self.experiment.algorithm
        return algorithm.algorithm_name if algorithm is not None else "-"

    @property
    def best(self) -> TrialRow | None:
        return next((r for r in self.rows if r.best), None)


# ---------------------------------------------------------------- building rows


def processes_per_trial(experiment: Experiment) -> int:
    """Processes one trial runs: replicas x nprocPerNode (``auto`` counts one per replica, as locally)."""
    from experiments.spec import nproc_per_node, replica_specs

    spec = experiment.trial_template.trial_spec or {}
    replicas = sum(count for count, _ in replica_specs(spec).values()) or 1
    nproc = nproc_per_node(spec) if spec.get("kind") == "PyTorchJob" else "1"
    return replicas * (int(nproc) if nproc.isdigit() and int(nproc) > 0 else 1)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def duration_s(trial: TrialRecord) -> float | None:
    """Seconds a finished trial ran; None while it runs or before it started."""
    if trial.start_time is None or trial.completion_time is None:
        return None
    return max(0.0, (_utc(trial.completion_time) - _utc(trial.start_time)).total_seconds())


def why(message: str) -> str:
    """The one line that says why: the message's first line, or, where that line only introduces the log's
    last lines ("...; last lines of its log:"), that line with the log's last line, the trainer's error."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if len(lines) > 1 and lines[0].endswith(":"):
        head = lines[0].rsplit(";", 1)[0] if ";" in lines[0] else lines[0].rstrip(":")
        return f"{head}: {lines[-1]}"
    return lines[0]


def status_text(trial: TrialRecord, steps: int) -> tuple[str, str]:
    """(status, detail): the condition with its reason, and the one line that says why."""
    if trial.condition == TRIAL_EARLY_STOPPED:
        # No observation log (a cluster without db-manager access): the step is unknown, not 0.
        return (f"EarlyStopped at step {steps}" if steps else "EarlyStopped"), why(trial.message)
    if trial.condition in (TRIAL_FAILED, TRIAL_METRICS_UNAVAILABLE):
        return trial.condition, why(trial.message) or trial.reason
    if trial.condition == TRIAL_KILLED:
        return TRIAL_KILLED, why(trial.message)
    return trial.condition, ""


def _metric_objective(objective: Objective, metric: str) -> Objective:
    """The objective as if ``metric`` were the one ranked: its own strategy picks its value and order."""
    strategy = objective.strategy_for(metric)
    kind = {"min": "minimize", "max": "maximize"}.get(strategy, objective.type)
    return dataclasses.replace(objective, objective_metric_name=metric, type=kind)


def metric_string(trial: TrialRecord, objective: Objective, metric: str) -> str | None:
    """``metric``'s value by its metricStrategy (Katib's getMetrics), or None when unavailable."""
    from experiments.ranking import UNAVAILABLE, objective_string

    value = objective_string(trial, _metric_objective(objective, metric))
    return None if value == UNAVAILABLE else value


def curve(trial: TrialRecord, metric: str) -> tuple[float | None, ...]:
    from experiments.collector import parse_float

    return tuple(parse_float(o.value) for o in trial.observations if o.name == metric)


def build_rows(
    name: str, experiment: Experiment, records: Sequence[TrialRecord], processes: int | None = None
) -> tuple[TrialRow, ...]:
    """One row per record, in creation order, ranked by experiments.ranking."""
    from experiments.ranking import objective_value, rank_trials

    objective = experiment.objective
    processes = processes or processes_per_trial(experiment)
    ranks = {t.name: i for i, t in enumerate(rank_trials(records, objective), start=1)}
    rows = []
    for number, trial in enumerate(records, start=1):
        values = curve(trial, objective.objective_metric_name)
        status, detail = status_text(trial, len(values))
        seconds = duration_s(trial)
        value = metric_string(trial, objective, objective.objective_metric_name)
        rows.append(
            TrialRow(
                experiment=name,
                trial=trial.name,
                number=number,
                condition=trial.condition,
                reason=trial.reason,
                status=status,
                detail=detail,
                parameters=dict(trial.parameters),
                objective_metric=objective.objective_metric_name,
                objective=value,
                objective_value=None if value is None else objective_value(trial, objective),
                metrics={m: metric_string(trial, objective, m) for m in objective.additional_metric_names},
                steps=len(values),
                curve=values,
                duration_s=seconds,
                processes=processes,
                trial_seconds=None if seconds is None else seconds * processes,
                rank=ranks.get(trial.name),
                start_time=trial.start_time,
                completion_time=trial.completion_time,
            )
        )
    return tuple(rows)


def view_of(
    name: str,
    experiment: Experiment,
    records: Sequence[TrialRecord],
    *,
    condition: str = "",
    reason: str = "",
    backend: str = "local",
) -> ExperimentView:
    records = tuple(records)
    return ExperimentView(
        name, experiment, records, build_rows(name, experiment, records), condition, reason, backend
    )


def load(
    names: Sequence[str],
    *,
    backend: str = "local",
    storage: str | None = None,
    workdir: Any = None,
    **cluster: Any,
) -> list[ExperimentView]:
    """Each named experiment's view, read through the backend protocol (local or cluster). ``cluster``:
    namespace / context / kubeconfig for ``backend="cluster"`` (unset: as kubectl picks them)."""
    from pathlib import Path

    from experiments.backends import get_backend

    if not names:
        raise UsageError("name at least one experiment to compare, e.g. `katib experiment compare NAME`")
    duplicates = sorted({n for n in names if list(names).count(n) > 1})
    if duplicates:
        raise UsageError(f"each experiment may be named once; repeated: {', '.join(duplicates)}")
    options: dict[str, Any] = {"storage": storage}
    options["workdir"] = Path(workdir) if workdir is not None else Path.cwd()
    if backend == "cluster":
        options.update({k: v for k, v in cluster.items() if v is not None})
    store = get_backend(backend, **options)
    views = []
    for name in names:
        handle = store.get(name)
        status = handle.status()
        views.append(
            view_of(
                name,
                handle.experiment,
                status.trials,
                condition=status.condition,
                reason=status.reason,
                backend=status.backend,
            )
        )
    return views


def compare(
    names: str | Sequence[str],
    *,
    backend: str = "local",
    storage: str | None = None,
    workdir: Any = None,
    **cluster: Any,
) -> list[TrialRow]:
    """Every trial of the named experiments as a TrialRow (no pandas needed), experiments in the given order."""
    if isinstance(names, str):
        names = [names]
    views = load(names, backend=backend, storage=storage, workdir=workdir, **cluster)
    return [row for view in views for row in view.rows]


# ---------------------------------------------------------------- ordering and compute


def sort_keys(view: ExperimentView) -> list[str]:
    return [
        view.objective.objective_metric_name,
        *view.metric_names,
        *view.parameter_names,
        DURATION,
        TRIAL_SECONDS,
    ]


def sort_rows(view: ExperimentView, key: str | None) -> list[TrialRow]:
    """Rows best first by ``key``: a metric by experiments.ranking (its strategy and direction); a parameter,
    duration or trial-seconds ascending. Rows without a value keep creation order after the rest."""
    from experiments.ranking import rank_trials

    rows = list(view.rows)
    if key is None:
        return rows
    objective = view.objective
    if key == objective.objective_metric_name or key in view.metric_names:
        order = {
            t.name: i for i, t in enumerate(rank_trials(view.records, _metric_objective(objective, key)))
        }
        return sorted(rows, key=lambda r: (r.trial not in order, order.get(r.trial, r.number)))
    if key in (DURATION, TRIAL_SECONDS):
        attr = "duration_s" if key == DURATION else "trial_seconds"
        return sorted(rows, key=lambda r: (getattr(r, attr) is None, getattr(r, attr) or 0.0, r.number))
    if key in view.parameter_names:
        return sorted(rows, key=lambda r: (_numeric_or_text(r.parameters.get(key)), r.number))
    raise UsageError(f"--sort must be one of {sort_keys(view)} for experiment {view.name!r}; got: {key}")


def _numeric_or_text(value: str | None) -> tuple:
    from experiments.collector import parse_float

    if value is None:
        return (2, 0.0, "")
    number = parse_float(value)
    return (0, number, "") if number is not None else (1, 0.0, value)


def top_rows(view: ExperimentView, key: str | None, k: int | None) -> list[TrialRow]:
    """The rows to show: sorted by ``key``; with ``k``, the best k by ``key`` (else by the objective)."""
    if k is not None and k < 1:
        raise UsageError(f"--top must be a positive integer; got: {k}")
    if k is None:
        return sort_rows(view, key)
    ranked = sort_rows(view, key or view.objective.objective_metric_name)
    return ranked[:k]


def compute_spent(view: ExperimentView) -> float:
    """Trial-seconds used by every finished trial (interrupted ones too: their compute was spent)."""
    return sum(r.trial_seconds for r in view.rows if r.trial_seconds is not None)


def compute_saved(view: ExperimentView) -> dict[str, float]:
    """Trial-seconds each early-stopped trial would still have used had it run to the end.

    Estimate: a full trial reports as often as the median succeeded trial does; the stopped trial's
    own seconds per report prices the reports it did not make. Without a succeeded trial to go by, 0.
    """
    done = [r for r in view.rows if r.condition == TRIAL_SUCCEEDED and r.steps]
    if not done:
        return {}
    full_steps = statistics.median(r.steps for r in done)
    saved = {}
    for row in view.rows:
        if row.condition != TRIAL_EARLY_STOPPED or row.trial_seconds is None or not row.steps:
            continue
        saved[row.trial] = max(0.0, (full_steps - row.steps) * row.trial_seconds / row.steps)
    return saved


def finished(row: TrialRow) -> bool:
    return row.condition in TRIAL_FINISHED


def best_so_far(view: ExperimentView) -> list[tuple[int, float, float | None]]:
    """(trials so far, trial-seconds so far, best objective so far) after each trial, in creation order.

    "Best" is experiments.ranking's: only trials it ranks count, compared with ``is_better``.
    """
    from experiments.ranking import is_better

    best: float | None = None
    spent = 0.0
    out = []
    for row in view.rows:
        spent += row.trial_seconds or 0.0
        value = row.objective_value
        if (
            row.rank is not None
            and value is not None
            and (best is None or is_better(value, best, view.objective))
        ):
            best = value
        out.append((row.number, spent, best))
    return out
