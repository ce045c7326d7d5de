"""The run verbs as a user drives them: ``katib experiment submit|status|trials|list|logs|delete|resume``.

Trials run a tiny stand-in program (prints Katib metric lines) through the real local backend, with a
throw-away SQLite storage per test.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest

from experiments.backends._protocol import ExperimentStatus, MetricSummary, TrialRecord
from experiments.cli import main
from experiments.cli._views import ProgressView, estimate_eta, human_seconds, objective_value, short
from experiments.spec import (
    Algorithm,
    Experiment,
    MetricStrategy,
    Objective,
    TrialTemplate,
)

T0 = datetime(2026, 1, 1, 10, 0, 0, tzinfo=timezone.utc)


def record(name, condition, seconds=None, acc=None, started=T0) -> TrialRecord:
    end = started + timedelta(seconds=seconds) if seconds is not None else None
    metrics = (MetricSummary("eval_accuracy", *acc),) if acc else ()
    return TrialRecord(
        name, {"lr": "1.2345678e-05"}, condition, metrics=metrics, start_time=started, completion_time=end
    )


def bare_experiment(strategy: str | None = None, kind: str = "maximize") -> Experiment:
    strategies = (MetricStrategy("eval_accuracy", strategy),) if strategy else ()
    return Experiment(
        name="exp",
        objective=Objective(kind, "eval_accuracy", metric_strategies=strategies),
        algorithm=Algorithm("random"),
        parameters=(),
        trial_template=TrialTemplate(trial_parameters=()),
    )


# ---------------------------------------------------------------- pure view helpers


@pytest.mark.parametrize(
    ("trials", "parallel", "budget", "expected"),
    [
        # nothing finished yet: no basis for an estimate
        ((record("a", "Running"),), 2, 4, None),
        # no budget: unbounded
        ((record("a", "Succeeded", 10),), 1, None, None),
        # 1 of 4 done in 10 s, 3 to start, one slot: 30 s
        ((record("a", "Succeeded", 10),), 1, 4, 30.0),
        # same over two slots: 15 s
        ((record("a", "Succeeded", 10),), 2, 4, 15.0),
        # mean of 10 and 20 = 15; 2 left to start over 2 slots = 15 s
        ((record("a", "Succeeded", 10), record("b", "Failed", 20)), 2, 4, 15.0),
        # budget spent: 0
        ((record("a", "Succeeded", 10), record("b", "EarlyStopped", 10)), 2, 2, 0.0),
    ],
)
def test_eta_comes_from_finished_durations_parallelism_and_budget(trials, parallel, budget, expected):
    status = ExperimentStatus(name="exp", condition="Running", trials=trials)
    assert estimate_eta(status, parallel, budget, now=T0 + timedelta(seconds=60)) == expected


def test_eta_counts_what_is_left_of_running_trials():
    now = T0 + timedelta(seconds=100)
    running = record("b", "Running", started=now - timedelta(seconds=4))
    status = ExperimentStatus(name="exp", condition="Running", trials=(record("a", "Succeeded", 10), running))
    # 6 s left of b, nothing else to start (budget 2), one slot
    assert estimate_eta(status, 1, 2, now=now) == pytest.approx(6.0)


@pytest.mark.parametrize(
    ("strategy", "kind", "expected"),
    [
        (None, "maximize", "0.9"),
        (None, "minimize", "0.1"),
        ("latest", "maximize", "0.5"),
        ("min", "maximize", "0.1"),
    ],
)
def test_objective_value_follows_metric_strategies(strategy, kind, expected):
    trial = record("a", "Succeeded", 1, acc=("0.1", "0.9", "0.5"))
    assert objective_value(trial, bare_experiment(strategy, kind)) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [("1.2345678e-05", "1.235e-05"), ("16", "16"), ("0.71234", "0.7123"), ("adam", "adam"), ("2.0", "2")],
)
def test_short_values(value, text):
    assert short(value) == text


@pytest.mark.parametrize(("seconds", "text"), [(None, "-"), (5.4, "5s"), (65, "1m05s"), (3723, "1h02m")])
def test_human_seconds(seconds, text):
    assert human_seconds(seconds) == text


def test_plain_progress_prints_one_line_per_change():
    stream = io.StringIO()
    view = ProgressView(bare_experiment(), "exp", parallelism=2, max_trials=2, stream=stream, live=False)
    running = record("exp-a", "Running", acc=("0.5", "0.5", "0.5"))
    done = record("exp-a", "Succeeded", 12, acc=("0.5", "0.7", "0.7"))
    with view:
        view.update(ExperimentStatus(name="exp", condition="Running", trials=(running,)))
        view.update(
            ExperimentStatus(name="exp", condition="Running", trials=(running,))
        )  # no change: no line
        view.update(ExperimentStatus(name="exp", condition="Running", trials=(done,), optimal_trial=done))
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("experiment exp: running 2 trial(s) at a time")
    assert lines[1] == "exp-a Running  lr=1.235e-05  eval_accuracy=0.5"
    assert lines[2] == "exp-a Succeeded  lr=1.235e-05  eval_accuracy=0.7  12s"
    assert lines[3] == "best so far: exp-a eval_accuracy=0.7"
    assert len(lines) == 4


def test_live_progress_renders_table_with_best_and_eta():
    from rich.console import Console

    view = ProgressView(bare_experiment(), "exp", parallelism=1, max_trials=3, live=False)
    done = record("exp-a", "Succeeded", 10, acc=("0.5", "0.7", "0.7"))
    view.update(ExperimentStatus(name="exp", condition="Running", trials=(done,), optimal_trial=done))
    console = Console(file=io.StringIO(), width=160)
    console.print(view.render())
    text = console.file.getvalue()
    assert "1/3 finished" in text and "ETA 20s" in text
    assert "best so far: exp-a eval_accuracy=0.7" in text
    assert "exp-a" in text and "Succeeded" in text


# ---------------------------------------------------------------- CLI argument errors


def test_bad_flag_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "status", "x", "--output", "xml"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_missing_file_exits_1_without_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["experiment", "submit", "nope.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: experiment file not found: nope.yaml")
    assert "Traceback" not in err


def test_unknown_backend_names_the_registry(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["experiment", "list", "--backend", "moon"]) == 2
    assert "--backend must be one of ['local']; got: moon" in capsys.readouterr().err


def test_status_json_of_unknown_experiment_is_not_found(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        main(["experiment", "status", "ghost", "-o", "json", "--storage", f"sqlite:///{tmp_path}/s.db"]) == 1
    )
    err = capsys.readouterr().err
    assert "ghost" in err and "Traceback" not in err
