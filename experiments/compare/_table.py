"""The comparison as text (a terminal table that fits 80 columns), JSON or CSV.

Rows come from experiments.compare._rows; this module only lays them out. A trial's status cell keeps
the condition short and points to a numbered note below the table with the one line that says why
(the trainer's error, the collector's reason), so the table stays narrow and the reason stays whole.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, TextIO

from experiments.compare._rows import (
    ExperimentView,
    TrialRow,
    best_so_far,
    compute_saved,
    compute_spent,
    top_rows,
)
from experiments.errors import UsageError

OUTPUTS = ("text", "json", "csv")
BEST_MARK = "*"


def check_hidden(views: Sequence[ExperimentView], hidden: Sequence[str]) -> set[str]:
    """``--hide`` names: parameters or additional metrics of at least one experiment."""
    known = {n for v in views for n in (*v.parameter_names, *v.metric_names)}
    unknown = sorted(set(hidden) - known)
    if unknown:
        raise UsageError(
            f"--hide takes a parameter or additional metric name, one of {sorted(known)}; got: {', '.join(unknown)}"
        )
    return set(hidden)


def _fmt(value: Any) -> str:
    from experiments.cli._views import short

    return "-" if value is None else short(value)


def seconds_text(value: float | None) -> str:
    """Seconds as `katib experiment trials` prints them; under 10 s with a decimal (stand-in trials, smoke runs)."""
    from experiments.cli._views import human_seconds

    if value is not None and value < 9.95:
        return f"{value:.1f}s"
    return human_seconds(value)


def _strategy(view: ExperimentView, metric: str) -> str:
    return view.objective.strategy_for(metric)


def _heading(view: ExperimentView) -> str:
    objective = view.objective
    state = f"{view.condition} ({view.reason})" if view.reason else view.condition
    strategies = ", ".join(
        f"{m}={_strategy(view, m)}" for m in (objective.objective_metric_name, *view.metric_names)
    )
    return (
        f"{view.name}  [{view.backend}, {view.algorithm}]  {state or '-'}\n"
        f"{objective.type} {objective.objective_metric_name}; metricStrategies: {strategies}"
    )


# How hard the table squeezes itself to fit the width: 0 as is; 1 short headers and statuses;
# 2 trial names without the experiment's prefix too; 3 long parameter values cut to VALUE_WIDTH with "…".
SQUEEZE_LEVELS = (0, 1, 2, 3)
VALUE_WIDTH = 8


def _cut(text: str, squeeze: int) -> str:
    return text if squeeze < 3 or len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def _status_cell(row: TrialRow, squeeze: int) -> str:
    if squeeze and row.condition == "EarlyStopped":
        return f"EarlyStopped@{row.steps}" if row.steps else "EarlyStopped"
    return row.status


def _trial_cell(view: ExperimentView, row: TrialRow, squeeze: int) -> str:
    prefix = f"{view.name}-"
    if squeeze >= 2 and row.trial.startswith(prefix):
        return "…" + row.trial[len(prefix) :]
    return row.trial


def experiment_table(view: ExperimentView, rows: Sequence[TrialRow], hidden: set[str], squeeze: int = 0):
    """A rich Table of ``rows`` and the numbered notes that go under it (notes always name trials whole)."""
    from rich.table import Table

    objective = view.objective.objective_metric_name
    params = [p for p in view.parameter_names if p not in hidden]
    metrics = [m for m in view.metric_names if m not in hidden]

    def header(metric: str) -> str:
        return metric if squeeze else f"{metric} ({_strategy(view, metric)})"

    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold", collapse_padding=True)
    trials = [_trial_cell(view, row, squeeze) for row in rows]
    notes: list[str] = []
    statuses = []
    for row in rows:
        status = _status_cell(row, squeeze)
        if row.detail and row.condition != "EarlyStopped":
            notes.append(f"[{len(notes) + 1}] {row.trial}: {row.detail}")
            status = f"{status} [{len(notes)}]"
        statuses.append(status)
    # Trial names are copied into other commands and statuses carry the note numbers: never cut them.
    table.add_column("", no_wrap=True, width=1)
    table.add_column("TRIAL", no_wrap=True, min_width=max(map(len, trials), default=5))
    table.add_column("STATUS", no_wrap=True, min_width=max(map(len, statuses), default=6))
    for name in params:
        table.add_column(name, justify="right", no_wrap=True, overflow="ellipsis")
    table.add_column(header(objective), justify="right", no_wrap=True, overflow="ellipsis")
    for name in metrics:
        table.add_column(header(name), justify="right", no_wrap=True, overflow="ellipsis")
    table.add_column("TIME", justify="right", no_wrap=True, min_width=5)
    table.add_column("TRIAL-S", justify="right", no_wrap=True, min_width=7)
    for row, trial, status in zip(rows, trials, statuses, strict=True):
        cells = [BEST_MARK if row.best else "", trial, status]
        cells += [_cut(_fmt(row.parameters.get(p)), squeeze) for p in params]
        cells.append(_fmt(row.objective))
        cells += [_fmt(row.metrics.get(m)) for m in metrics]
        cells += [seconds_text(row.duration_s), seconds_text(row.trial_seconds)]
        table.add_row(*cells)
    return table, notes


def natural_width(table) -> int:
    """The width the table takes unsqueezed: widest cell per column, one space between columns.

    Cheaper than rich's Measurement over every row, which matters at a thousand trials."""
    from rich.cells import cell_len

    widths = [
        max([cell_len(str(column.header)), column.min_width or 0, *(cell_len(str(c)) for c in column._cells)])
        for column in table.columns
    ]
    return sum(widths) + len(widths) - 1


def fitted_table(console, view: ExperimentView, rows: Sequence[TrialRow], hidden: set[str]):
    """The least squeezed table that fits the console's width; when even the most squeezed one does not,
    additional metrics are left out from the right (the objective, parameters, trial and status never are)
    and a note says which."""
    for squeeze in SQUEEZE_LEVELS:
        table, notes = experiment_table(view, rows, hidden, squeeze)
        if natural_width(table) <= console.width:
            return table, notes
    extra = [m for m in view.metric_names if m not in hidden]
    dropped: list[str] = []
    while extra and natural_width(table) > console.width:
        dropped.insert(0, extra.pop())
        table, notes = experiment_table(view, rows, hidden | set(dropped), SQUEEZE_LEVELS[-1])
    if dropped:
        notes.append(
            f"left out to fit {console.width} columns: {', '.join(dropped)} (wider terminal, or -o json)"
        )
    return table, notes


def _footer(view: ExperimentView, shown: int) -> list[str]:
    lines = []
    if shown < len(view.rows):
        lines.append(f"showing {shown} of {len(view.rows)} trials")
    best = view.best
    lines.append(
        f"{BEST_MARK} best: {best.trial} {best.objective_metric}={_fmt(best.objective)}"
        if best is not None
        else "no trial has an objective value yet"
    )
    processes = sorted({r.processes for r in view.rows}) or [1]
    saved = sum(compute_saved(view).values())
    text = f"TRIAL-S = TIME x {'/'.join(map(str, processes))} process(es); spent {seconds_text(compute_spent(view))}"
    if saved:
        text += f", early stopping saved ~{seconds_text(saved)}"
    lines.append(text)
    return lines


def optimal_table(views: Sequence[ExperimentView]):
    """Several experiments side by side: each one's optimal trial and what it cost to find."""
    from rich.table import Table

    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold", title_justify="left")
    for column in ("EXPERIMENT", "ALGORITHM", "TRIALS", "BEST TRIAL", "OBJECTIVE", "SPENT", "TO BEST"):
        table.add_column(column, no_wrap=column in ("EXPERIMENT", "BEST TRIAL"), justify="left")
    for view in views:
        best = view.best
        curve = best_so_far(view)
        to_best = next((spent for n, spent, _ in curve if best is not None and n == best.number), None)
        table.add_row(
            view.name,
            view.algorithm,
            str(len(view.rows)),
            best.trial if best else "-",
            f"{view.objective.objective_metric_name}={_fmt(best.objective)}" if best else "-",
            seconds_text(compute_spent(view)),
            seconds_text(to_best),
        )
    return table


def print_text(
    views: Sequence[ExperimentView],
    stream: TextIO | None = None,
    *,
    sort: str | None = None,
    top: int | None = None,
    hidden: Sequence[str] = (),
    width: int | None = None,
) -> None:
    """The terminal table(s). Colour only on a terminal; when piped, plain text at $COLUMNS or 80 wide."""
    from rich.console import Console

    hide = check_hidden(views, hidden)
    console = Console(file=stream, highlight=False, width=width)
    for index, view in enumerate(views):
        rows = top_rows(view, sort, top)
        if index:
            console.print()
        console.print(_heading(view), markup=False, style="bold")
        if not view.rows:
            console.print("  no trials yet", markup=False)
            continue
        table, notes = fitted_table(console, view, rows, hide)
        console.print(table)
        for line in notes + _footer(view, len(rows)):
            console.print(line, markup=False)
    if len(views) > 1:
        console.print()
        console.print("optimal trials", style="bold")
        console.print(optimal_table(views))


def to_document(
    views: Sequence[ExperimentView], *, sort: str | None = None, top: int | None = None, hidden=()
) -> dict[str, Any]:
    """What ``--output json`` prints: each experiment with its compute figures and its (shown) trials."""
    hide = check_hidden(views, hidden)
    out = []
    for view in views:
        rows = [_without(row.to_dict(), hide) for row in top_rows(view, sort, top)]
        best = view.best
        out.append(
            {
                "name": view.name,
                "backend": view.backend,
                "condition": view.condition,
                "reason": view.reason,
                "algorithm": view.algorithm,
                "objective": {
                    "type": view.objective.type,
                    "metric": view.objective.objective_metric_name,
                    "additional_metrics": list(view.metric_names),
                },
                "best_trial": best.trial if best else None,
                "trial_seconds_spent": compute_spent(view),
                "trial_seconds_saved_by_early_stopping": sum(compute_saved(view).values()),
                "trials": rows,
            }
        )
    return {"experiments": out}


def _without(row: dict[str, Any], hidden: set[str]) -> dict[str, Any]:
    row["parameters"] = {k: v for k, v in row["parameters"].items() if k not in hidden}
    row["metrics"] = {k: v for k, v in row["metrics"].items() if k not in hidden}
    return row


def print_json(views: Sequence[ExperimentView], stream: TextIO, **options: Any) -> None:
    stream.write(json.dumps(to_document(views, **options), indent=2) + "\n")


def print_csv(views: Sequence[ExperimentView], stream: TextIO, **options: Any) -> None:
    """One line per trial; parameter and metric columns are the union over the experiments."""
    document = to_document(views, **options)
    trials = [t for e in document["experiments"] for t in e["trials"]]
    params = list(dict.fromkeys(k for t in trials for k in t["parameters"]))
    metrics = list(dict.fromkeys(k for t in trials for k in t["metrics"]))
    fixed = ["experiment", "trial", "condition", "reason", "status", "detail", "best"]
    tail = ["objective_metric", "objective", "steps", "duration_s", "processes", "trial_seconds", "rank"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fixed + params + tail + metrics)
    for t in trials:
        writer.writerow(
            [t[k] for k in fixed]
            + [t["parameters"].get(p, "") for p in params]
            + ["" if t[k] is None else t[k] for k in tail]
            + ["" if t["metrics"].get(m) is None else t["metrics"][m] for m in metrics]
        )
    stream.write(buffer.getvalue())
