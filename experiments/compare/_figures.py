"""The report's figures: ``optuna.visualization`` where it draws the plot, plain plotly for the rest.

Each function returns a ``Figure`` or a string saying why there is no figure (too few trials, no
learning-rate parameter, ...). No plotting code of our own beyond choosing traces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from experiments.backends._protocol import TRIAL_EARLY_STOPPED
from experiments.compare._rows import ExperimentView, best_so_far, compute_saved

LR_NAMES = ("learning_rate", "learningrate", "lr")
BATCH_NAMES = ("global_batch_size", "batch_size", "batchsize", "batch")


def _complete(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _axis(label: str, texts: list[str | None], log: bool = False) -> dict[str, Any] | None:
    """One parcoords axis: numbers as they are (log10 on a log scale), anything else as ticked categories."""
    numbers = [_float(t) for t in texts]
    if all(n is not None for n in numbers) and numbers:
        if log and all(n > 0 for n in numbers):
            import math

            values = [math.log10(n) for n in numbers]
            ticks = list(range(math.floor(min(values)), math.ceil(max(values)) + 1))
            return {
                "label": label,
                "values": values,
                "tickvals": ticks,
                "ticktext": [f"1e{t}" for t in ticks],
            }
        return {"label": label, "values": numbers}
    if any(n is not None for n in numbers) and all(
        n is not None or t is None for n, t in zip(numbers, texts, strict=True)
    ):
        known = [n for n in numbers if n is not None]
        return {"label": label, "values": [n if n is not None else min(known) for n in numbers]}
    choices = list(dict.fromkeys(t or "-" for t in texts))
    return {
        "label": label,
        "values": [choices.index(t or "-") for t in texts],
        "tickvals": list(range(len(choices))),
        "ticktext": choices,
    }


def parallel_coordinates(view: ExperimentView, hidden: set[str]):
    """Parameters, objective and additional metrics as plotly parcoords axes (drag to reorder; the report
    adds a checkbox per axis to hide it). Optuna's own plot draws fixed SVG axes, which cannot be moved."""
    import plotly.graph_objects as go

    rows = [r for r in view.rows if r.objective_value is not None]
    if not rows or not view.parameter_names:
        return "no trial with an objective value yet"
    logs = {
        p.name
        for p in view.experiment.parameters
        if p.feasible_space.distribution in ("logUniform", "logNormal")
    }
    dimensions = [_axis(p, [r.parameters.get(p) for r in rows], p in logs) for p in view.parameter_names]
    objective = view.objective.objective_metric_name
    dimensions.append({"label": objective, "values": [r.objective_value for r in rows]})
    for metric in view.metric_names:
        dimensions.append(_axis(metric, [r.metrics.get(metric) for r in rows]))
    for dimension in dimensions:
        dimension["visible"] = dimension["label"] not in hidden
    fig = go.Figure(
        go.Parcoords(
            line={
                "color": [r.objective_value for r in rows],
                "colorscale": "Viridis",
                "reversescale": view.objective.type == "minimize",
                "showscale": True,
                "colorbar": {"title": objective},
            },
            dimensions=dimensions,
        )
    )
    fig.update_layout(title=f"parallel coordinates ({len(rows)} trials with an objective value)")
    return fig


def _float(text: str | None) -> float | None:
    from experiments.collector import parse_float

    return None if text is None else parse_float(text)


def optimization_history(view: ExperimentView, study):
    import optuna.visualization as vis

    if _complete(study) < 1:
        return "no trial with an objective value yet"
    return vis.plot_optimization_history(study, target_name=view.objective.objective_metric_name)


def learning_curves(view: ExperimentView, study):
    """Optuna's intermediate values (objective per report); early-stopped trials marked where they stopped."""
    import optuna.visualization as vis

    if not any(r.curve for r in view.rows):
        return "no trial reported the objective yet"
    fig = vis.plot_intermediate_values(study)
    fig.update_layout(yaxis_title=view.objective.objective_metric_name, xaxis_title="report (step)")
    stopped = [r for r in view.rows if r.condition == TRIAL_EARLY_STOPPED and r.curve]
    if stopped:
        fig.add_scatter(
            x=[r.steps for r in stopped],
            y=[r.curve[-1] for r in stopped],
            mode="markers",
            marker={"symbol": "x", "size": 11, "color": "crimson"},
            name="early stopped here",
            text=[r.trial for r in stopped],
            hovertemplate="%{text}: stopped at step %{x}<extra></extra>",
        )
    return fig


def _find(names: Sequence[str], wanted: Sequence[str]) -> str | None:
    lowered = {n.lower().replace("-", "_"): n for n in names}
    for want in wanted:
        if want in lowered:
            return lowered[want]
    return next((n for key, n in lowered.items() for want in wanted if want in key), None)


def lr_batch_scatter(view: ExperimentView):
    """Learning rate x batch size, each trial coloured by its objective value."""
    import plotly.graph_objects as go

    lr = _find(view.parameter_names, LR_NAMES)
    batch = _find([n for n in view.parameter_names if n != lr], BATCH_NAMES)
    if lr is None or batch is None:
        return "needs a learning-rate and a batch-size parameter (names like lr / batch_size)"
    rows = [
        r for r in view.rows if r.objective_value is not None and lr in r.parameters and batch in r.parameters
    ]
    if not rows:
        return "no trial with an objective value yet"
    x = [_float(r.parameters[lr]) for r in rows]
    log_x = all(v is not None and v > 0 for v in x) and max(x) / min(x) >= 20
    fig = go.Figure(
        go.Scatter(
            x=x,
            y=[_float(r.parameters[batch]) for r in rows],
            mode="markers",
            text=[f"{r.trial} ({r.status})" for r in rows],
            marker={
                "color": [r.objective_value for r in rows],
                "colorscale": "Viridis",
                "size": 11,
                "showscale": True,
                "colorbar": {"title": view.objective.objective_metric_name},
                "line": {"width": [3 if r.best else 0 for r in rows], "color": "black"},
            },
            hovertemplate="%{text}<br>"
            + f"{lr}=%{{x}}<br>{batch}=%{{y}}<br>objective=%{{marker.color}}<extra></extra>",
            name="trials",
        )
    )
    fig.update_layout(xaxis_title=lr, yaxis_title=batch, title="learning rate x batch size")
    fig.update_xaxes(type="log" if log_x else "linear")
    return fig


# fANOVA (Optuna's default) costs ~10 s at 1000 trials; past this many, PED-ANOVA answers in a fraction.
FANOVA_MAX_TRIALS = 200


def importances(view: ExperimentView, study):
    """Optuna's parameter importances: fANOVA, or PED-ANOVA on big studies; needs a few complete trials."""
    import optuna.visualization as vis
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    complete = _complete(study)
    if complete < 3:
        return "needs at least 3 trials with an objective value"
    if complete <= FANOVA_MAX_TRIALS:
        evaluator, name = FanovaImportanceEvaluator(seed=0), "fANOVA"
    else:
        evaluator, name = PedAnovaImportanceEvaluator(), "PED-ANOVA"
    try:
        fig = vis.plot_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError) as error:  # e.g. every trial got the same parameters
        return f"Optuna cannot compute importances here: {error}"
    fig.update_layout(title=f"parameter importance (Optuna, {name}, {complete} trials)")
    return fig


def durations(view: ExperimentView, study):
    import optuna.visualization as vis

    if not any(r.start_time for r in view.rows):
        return "no trial has started yet"
    fig = vis.plot_timeline(study)
    fig.update_layout(title="trial durations (timeline)")
    return fig


def compute(view: ExperimentView):
    """Trial-seconds spent, by trial condition, and those early stopping saved (an estimate)."""
    import plotly.graph_objects as go

    spent: dict[str, float] = {}
    for row in view.rows:
        if row.trial_seconds is not None:
            spent[row.condition] = spent.get(row.condition, 0.0) + row.trial_seconds
    if not spent:
        return "no trial has finished yet"
    saved = sum(compute_saved(view).values())
    labels = [*spent, "saved by early stopping"]
    values = [*spent.values(), saved]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=values,
            marker_color=["#4c78a8"] * len(spent) + ["#54a24b"],
            text=[f"{v:,.0f}" for v in values],
            name="trial-seconds",
        )
    )
    fig.update_layout(title="compute (trial-seconds = duration x processes)", yaxis_title="trial-seconds")
    return fig


def best_so_far_overlay(views: Sequence[ExperimentView], by: str):
    """Every experiment's best objective so far, against trial count or against trial-seconds spent."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for view in views:
        points = [(n, spent, best) for n, spent, best in best_so_far(view) if best is not None]
        if not points:
            continue
        fig.add_scatter(
            x=[p[0] if by == "trials" else p[1] for p in points],
            y=[p[2] for p in points],
            mode="lines+markers",
            line_shape="hv",
            name=f"{view.name} ({view.algorithm})",
        )
    if not fig.data:
        return "no experiment has an objective value yet"
    metrics = sorted({v.objective.objective_metric_name for v in views})
    fig.update_layout(
        title=f"best so far vs {'trial count' if by == 'trials' else 'trial-seconds'}",
        xaxis_title="trials" if by == "trials" else "trial-seconds spent",
        yaxis_title=" / ".join(metrics),
    )
    return fig


def experiment_figures(view: ExperimentView, hidden: set[str]) -> list[tuple[str, Any]]:
    """(title, figure or the reason there is none) for one experiment, in reading order."""
    from experiments.compare._study import study_of

    study = study_of(view)
    return [
        ("Parallel coordinates", parallel_coordinates(view, hidden)),
        ("Objective per trial, best so far", optimization_history(view, study)),
        ("Learning curves", learning_curves(view, study)),
        ("Learning rate x batch size", lr_batch_scatter(view)),
        ("Parameter importance", importances(view, study)),
        ("Trial durations", durations(view, study)),
        ("Compute spent and saved", compute(view)),
    ]
