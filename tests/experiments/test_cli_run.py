"""The run verbs as a user drives them: ``katib experiment submit|status|trials|list|logs|delete|resume``.

Trials run a tiny stand-in program (prints Katib metric lines) through the real local backend, with a
throw-away SQLite storage per test.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from experiments.backends._protocol import ExperimentStatus, MetricSummary, TrialRecord
from experiments.cli import main
from experiments.cli._views import (
    ProgressView,
    estimate_eta,
    human_seconds,
    objective_value,
    short,
    status_lines,
)
from experiments.spec import (
    Algorithm,
    Experiment,
    MetricStrategy,
    Objective,
    TrialTemplate,
)

T0 = datetime(2026, 1, 1, 10, 0, 0, tzinfo=timezone.utc)
REPO_ROOT = Path(__file__).resolve().parents[2]


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


def interrupted_record(name, seconds, started=T0) -> TrialRecord:
    return dataclasses.replace(record(name, "Killed", seconds, started=started), reason="ExperimentKilled")


def test_trials_killed_by_ctrl_c_do_not_use_up_the_budget_in_progress_or_eta():
    # After Ctrl-C + resume: 2 done (10 s each), 1 interrupted after 2 s, 1 running; budget 5.
    now = T0 + timedelta(seconds=100)
    trials = (
        record("a", "Succeeded", 10),
        record("b", "Succeeded", 10),
        interrupted_record("c", 2),
        record("d", "Running", started=now - timedelta(seconds=4)),
    )
    status = ExperimentStatus(name="exp", condition="Running", trials=trials)
    # resume replaces c: 2 still to start (20 s) + 6 s left of d, one slot; c's 2 s is not a trial's cost
    assert estimate_eta(status, 1, 5, now=now) == pytest.approx(26.0)
    view = ProgressView(bare_experiment(), "exp", parallelism=1, max_trials=5, live=False)
    view.update(status)
    assert "2/5 done, 1 running, 1 interrupted" in view.header(now)


def test_no_eta_once_the_experiment_has_ended():
    status = ExperimentStatus(
        name="exp", condition="Failed", trials=(record("a", "Succeeded", 10), interrupted_record("b", 3))
    )
    assert estimate_eta(status, 1, 5, now=T0 + timedelta(seconds=60)) is None
    view = ProgressView(bare_experiment(), "exp", parallelism=1, max_trials=5, live=False)
    view.update(status)
    assert "ETA -" in view.header()


def test_status_text_counts_interrupted_trials_apart_from_the_budget():
    trials = (
        record("a", "Succeeded", 10),
        interrupted_record("b", 3),
        record("c", "EarlyStopped", 5),
        dataclasses.replace(record("d", "Killed", 4), reason="TrialKilled"),  # the experiment ended: counted
    )
    status = ExperimentStatus(name="exp", condition="Succeeded", trials=trials, max_trial_count=3)
    line = next(x for x in status_lines(status, bare_experiment()) if x.startswith("  trials:"))
    assert (
        line
        == "  trials:   3 of 3 (1 Succeeded, 1 EarlyStopped, 1 Killed), plus 1 interrupted (Killed; not counted)"
    )


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
    assert "1/3 done" in text and "ETA 20s" in text
    assert "best so far: exp-a eval_accuracy=0.7" in text
    assert "exp-a" in text and "Succeeded" in text


def test_live_view_stops_the_terminal_echoing_ctrl_c_and_restores_it():
    # "^C" echoed after a full-width last row wraps, and rich's next redraw leaves a stale header line.
    import termios

    leader, follower = os.openpty()
    try:
        before = termios.tcgetattr(follower)[3]
        assert before & termios.ECHOCTL
        view = ProgressView(
            bare_experiment(),
            "exp",
            parallelism=1,
            max_trials=1,
            stream=io.StringIO(),
            live=True,
            tty_fd=follower,
        )
        with view:
            assert not termios.tcgetattr(follower)[3] & termios.ECHOCTL
        assert termios.tcgetattr(follower)[3] == before
    finally:
        os.close(leader)
        os.close(follower)


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
    err = capsys.readouterr().err
    assert "--backend must be one of [" in err and "'local'" in err and "got: moon" in err


def test_status_json_of_unknown_experiment_is_not_found(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        main(["experiment", "status", "ghost", "-o", "json", "--storage", f"sqlite:///{tmp_path}/s.db"]) == 1
    )
    err = capsys.readouterr().err
    assert "ghost" in err and "Traceback" not in err


# ---------------------------------------------------------------- end to end through the local backend

# A stand-in trial program: reports accuracy = x/3, 2x/3, x (timestamped Katib metric lines), then exits.
# It runs without a shell, so the parameter value arrives as one argv entry.
STANDIN = """
import sys, time
from datetime import datetime, timezone
x = float(sys.argv[1])
sleep = float(sys.argv[2])
for i in (1, 2, 3):
    time.sleep(sleep)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    print(f"{stamp} step={i} accuracy={x * i / 3:.4f}", flush=True)
"""


def write_experiment(
    path,
    name="cli-exp",
    values=("0.2", "0.5", "0.9"),
    parallel=2,
    sleep="0",
    max_trials=None,
    resume_policy="Never",
    program=STANDIN,
):
    import yaml

    container = {
        "name": "trial",
        "image": "ignored/locally:latest",
        "command": [sys.executable, "-c", program, "${trialParameters.x}", sleep],
    }
    document = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
            "algorithm": {"algorithmName": "grid"},
            "parallelTrialCount": parallel,
            "maxTrialCount": max_trials or len(values),
            "resumePolicy": resume_policy,
            "maxFailedTrialCount": 1,
            "parameters": [
                {"name": "x", "parameterType": "discrete", "feasibleSpace": {"list": list(values)}}
            ],
            "trialTemplate": {
                "primaryContainerName": "trial",
                "trialParameters": [{"name": "x", "reference": "x"}],
                "trialSpec": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {"template": {"spec": {"containers": [container], "restartPolicy": "Never"}}},
                },
            },
        },
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A working directory with an experiment file; storage is the default .katib/ SQLite under it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KATIB_STORAGE", raising=False)
    write_experiment(
        tmp_path / "exp.yaml", values=("0.2", "0.5", "0.9", "0.7"), max_trials=3, resume_policy="LongRunning"
    )
    return tmp_path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["experiment", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_submit_then_inspect_with_every_verb(workspace, capsys):
    code, out, err = run_cli(capsys, "submit", "exp.yaml")
    assert code == 0, err
    # stdout is not a terminal here: plain line-per-change progress, then the summary and next steps
    assert "experiment cli-exp: running 2 trial(s) at a time, up to 3 trials" in out
    assert "Succeeded (ExperimentMaxTrialsReached)" in out
    assert "katib experiment resume cli-exp --max-trials 7" in out  # resumePolicy LongRunning allows it

    code, out, _ = run_cli(capsys, "trials", "cli-exp", "-o", "json")
    items = json.loads(out)["items"]
    ran = {i["metadata"]["name"]: float(i["spec"]["parameterAssignments"][0]["value"]) for i in items}
    assert len(ran) == 3 and set(ran.values()) <= {0.2, 0.5, 0.9, 0.7}  # grid: three distinct points
    best = max(ran, key=ran.get)  # accuracy ends at x, so the largest x is the optimal trial
    x = ran[best]

    code, out, _ = run_cli(capsys, "status", "cli-exp", "-o", "json")
    assert code == 0
    document = json.loads(out)
    assert document["kind"] == "Experiment" and document["metadata"]["name"] == "cli-exp"
    assert document["spec"]["objective"]["objectiveMetricName"] == "accuracy"
    status = document["status"]
    assert status["trials"] == 3 and status["trialsSucceeded"] == 3
    assert sorted(status["succeededTrialList"]) == sorted(ran)
    assert "failedTrialList" not in status  # omitempty, as Katib
    assert [c["type"] for c in status["conditions"]] == ["Created", "Running", "Succeeded"]
    assert status["conditions"][-1]["reason"] == "ExperimentMaxTrialsReached"
    optimal = status["currentOptimalTrial"]
    assert optimal["bestTrialName"] == best
    assert optimal["parameterAssignments"] == [{"name": "x", "value": str(x)}]
    assert optimal["observation"]["metrics"] == [
        {"name": "accuracy", "min": f"{x / 3:.4f}", "max": f"{x:.4f}", "latest": f"{x:.4f}"}
    ]
    assert best.startswith("cli-exp-") and len(best) == len("cli-exp-") + 8

    code, out, _ = run_cli(capsys, "status", "cli-exp", "-o", "yaml")
    import yaml

    assert yaml.safe_load(out)["status"]["currentOptimalTrial"]["bestTrialName"] == best

    code, out, _ = run_cli(capsys, "status", "cli-exp")
    assert code == 0 and f"best:     {best} accuracy={x:g}" in out

    code, out, _ = run_cli(capsys, "trials", "cli-exp")
    rows = [line for line in out.splitlines() if line.startswith("cli-exp-")]
    assert code == 0 and len(rows) == 3 and all(" Succeeded " in row for row in rows)

    code, out, _ = run_cli(capsys, "logs", "cli-exp", best)
    assert code == 0 and f"step=3 accuracy={x:.4f}" in out and f"step=1 accuracy={x / 3:.4f}" in out
    code, out, _ = run_cli(capsys, "logs", "cli-exp", best, "--tail", "1")
    assert out.strip().endswith(f"step=3 accuracy={x:.4f}") and "step=1" not in out
    code, _, err = run_cli(capsys, "logs", "cli-exp", best, "--replica", "worker-7")
    assert code == 1 and "--replica must be one of" in err and "worker-7" in err

    # one more trial: resume grows the budget and keeps the three finished trials
    code, out, err = run_cli(capsys, "resume", "cli-exp", "--max-trials", "4")
    assert code == 0, err
    assert "trials:   4 of 4 (4 Succeeded)" in out
    code, out, _ = run_cli(capsys, "trials", "cli-exp", "-o", "json")
    after = {
        i["metadata"]["name"]: i["spec"]["parameterAssignments"][0]["value"] for i in json.loads(out)["items"]
    }
    assert set(ran) < set(after) and sorted(after.values()) == ["0.2", "0.5", "0.7", "0.9"]  # grid completed
    code, out, _ = run_cli(capsys, "status", "cli-exp", "-o", "json")
    optimal = json.loads(out)["status"]["currentOptimalTrial"]
    assert after[optimal["bestTrialName"]] == "0.9"

    code, out, _ = run_cli(capsys, "list", "-o", "json")
    assert [(r["name"], r["condition"], r["trials"]) for r in json.loads(out)] == [
        ("cli-exp", "Succeeded", 4)
    ]

    # the same name again: refused, pointing at resume
    code, _, err = run_cli(capsys, "submit", "exp.yaml")
    assert code == 1
    assert 'experiment "cli-exp" already exists' in err and "katib experiment resume cli-exp" in err

    code, _, err = run_cli(capsys, "delete", "cli-exp")  # stdin is not a terminal: needs --yes
    assert code == 2 and "--yes" in err
    code, out, _ = run_cli(capsys, "delete", "cli-exp", "--yes")
    assert code == 0 and "deleted experiment cli-exp" in out
    code, _, err = run_cli(capsys, "status", "cli-exp")
    assert code == 1 and "cli-exp" in err and "Traceback" not in err


@pytest.mark.slow
def test_failed_experiment_exits_1_and_points_at_the_failed_trials_log(workspace, capsys):
    crash = (
        "import sys; print('boom: cannot train with x =', sys.argv[1]); "
        "print('error: x must be below 0.1; got:', sys.argv[1], file=sys.stderr); sys.exit(3)"
    )
    write_experiment(workspace / "crash.yaml", name="crash", values=("0.3",), parallel=1, program=crash)
    code, out, _ = run_cli(capsys, "submit", "crash.yaml")
    assert code == 1
    assert "Failed (ExperimentMaxFailedTrialsReached)" in out
    failed = json.loads(run_cli(capsys, "status", "crash", "-o", "json")[1])["status"]["failedTrialList"][0]
    assert f"katib experiment logs crash {failed}   # why it Failed" in out
    # the reason is on screen already: the trainer's one-line error, not the last lines of a traceback
    assert f"failed:   {failed}: replica job-0 exited with code 3: x must be below 0.1; got: 0.3\n" in out
    assert "\n    replica job-0 exited with code 3: x must be below 0.1; got: 0.3\n" in out  # progress line
    code, out, _ = run_cli(capsys, "logs", "crash", failed)
    assert "boom: cannot train with x = 0.3" in out


@pytest.mark.slow
def test_detach_runs_in_the_background_and_watch_follows_it(workspace, capsys, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))  # the background runner is `python -m experiments.cli`
    write_experiment(workspace / "bg.yaml", name="bg", values=("0.3", "0.6"), parallel=1, sleep="0.3")
    started = time.monotonic()
    code, out, err = run_cli(capsys, "submit", "bg.yaml", "--detach")
    assert code == 0, err
    assert time.monotonic() - started < 30  # returned while the sweep goes on
    assert "experiment bg is running in the background" in out and "katib experiment watch bg" in out
    pid = int(out.split("(pid ")[1].split(",")[0])

    code, out, err = run_cli(capsys, "watch", "bg")  # follows the runner until the sweep ends
    assert code == 0, out + err
    assert "Succeeded (ExperimentMaxTrialsReached)" in out and "trials:   2 of 2 (2 Succeeded)" in out
    runner_log = (workspace / ".katib" / "runner-bg.log").read_text()
    assert "best so far: bg-" in runner_log  # the runner wrote its own plain progress
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_invalid_experiment_file_exits_1_with_the_field_path(workspace, capsys):
    (workspace / "bad.yaml").write_text("apiVersion: kubeflow.org/v1beta1\nkind: Experiment\nspec: {}\n")
    code, _, err = run_cli(capsys, "submit", "bad.yaml")
    assert code == 1
    assert err.startswith("error: ") and "Traceback" not in err
    assert "objective" in err  # names what is missing


def test_not_yaml_at_all_exits_1(workspace, capsys):
    (workspace / "bad.yaml").write_text("{not: [yaml")
    code, _, err = run_cli(capsys, "submit", "bad.yaml")
    assert code == 1 and err.startswith("error: ") and "Traceback" not in err


@pytest.mark.slow
def test_storage_flag_and_env_select_the_same_database(workspace, capsys, monkeypatch):
    write_experiment(workspace / "small.yaml", name="small", values=("0.4",), parallel=1)
    url = f"sqlite:///{workspace / 'elsewhere.db'}"
    code, out, err = run_cli(capsys, "submit", "small.yaml", "--storage", url, "--name", "renamed")
    assert code == 0, err
    assert f"katib experiment trials renamed --storage {url}" in out  # next steps repeat the flag
    code, out, _ = run_cli(capsys, "list", "-o", "json")  # the default storage does not have it
    assert json.loads(out) == []
    monkeypatch.setenv("KATIB_STORAGE", url)
    code, out, _ = run_cli(capsys, "list", "-o", "json")
    assert [r["name"] for r in json.loads(out)] == ["renamed"]


@pytest.mark.slow
def test_ctrl_c_in_a_real_katib_process_keeps_finished_trials_and_points_to_resume(workspace):
    write_experiment(
        workspace / "slow.yaml", name="slow", values=("0.1", "0.2", "0.3"), parallel=1, sleep="0.5"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "experiments.cli", "experiment", "submit", "slow.yaml"]
    proc = subprocess.Popen(
        command, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # wait until the first trial has finished (its line appears), then interrupt like Ctrl-C does
    deadline = time.monotonic() + 60
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if " Succeeded " in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (seen, out, err)
    assert "finished trials are kept" in err and "katib experiment resume slow" in err
    assert "Traceback" not in err

    status = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "experiment", "status", "slow", "-o", "json"],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    document = json.loads(status.stdout)["status"]
    assert document["trialsSucceeded"] >= 1
    assert "runningTrialList" not in document  # nothing left Running after the interrupt


# ---------------------------------------------------------------- storage that cannot be used


def test_storage_in_a_missing_folder_names_the_folder_to_create(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/no/such/dir/x.db"
    assert main(["experiment", "list", "--storage", url]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert (
        f"the folder {tmp_path}/no/such/dir does not exist: create it (mkdir -p {tmp_path}/no/such/dir)"
        in err
    )


def test_storage_without_its_driver_names_the_package_to_install(capsys):
    assert main(["experiment", "list", "--storage", "postgresql+psycopg2://127.0.0.1:1/x"]) == 1
    err = capsys.readouterr().err
    assert "install the database driver: pip install psycopg2-binary" in err and "Background on" not in err


def test_read_only_storage_refuses_a_delete_cleanly_and_keeps_the_experiment(tmp_path, capsys, monkeypatch):
    from experiments.backends.local import LocalBackend
    from experiments.spec import load_experiment

    db = tmp_path / "team.db"
    LocalBackend(storage=f"sqlite:///{db}", workdir=tmp_path).submit(
        load_experiment(REPO_ROOT / "experiments" / "quickstart.yaml")
    )
    # root ignores file modes, so open the file read-only the way SQLite itself enforces it
    monkeypatch.setenv("KATIB_STORAGE", f"sqlite:///file:{db}?mode=ro&uri=true")
    assert main(["experiment", "delete", "quickstart", "--yes"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot use the experiment storage") and "Traceback" not in err
    assert f"attempt to write a readonly database; make {db} and its folder writable" in err
    monkeypatch.delenv("KATIB_STORAGE")
    assert main(["experiment", "list", "--storage", f"sqlite:///{db}", "-o", "json"]) == 0
    assert [row["name"] for row in json.loads(capsys.readouterr().out)] == ["quickstart"]


def test_unknown_flag_is_reported_with_the_verbs_own_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "status", "quickstart", "--max-trials", "3"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: katib experiment status")  # not the root's "usage: katib [-h] {experiment}"
    assert "unrecognized arguments: --max-trials 3 (see `katib experiment status --help`)" in err


def test_experiment_help_shows_a_first_session(capsys):
    with pytest.raises(SystemExit):
        main(["experiment", "--help"])
    out = capsys.readouterr().out
    assert "katib experiment resume quickstart" in out and "$KATIB_STORAGE" in out
