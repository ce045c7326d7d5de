"""``katib experiment ui``: optuna-dashboard on the local backend's storage, on 127.0.0.1, stopped by Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from experiments.cli import main
from tests.experiments.backends._local_helpers import REPO_ROOT

pytestmark = pytest.mark.slow


def get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def dashboard(runs):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "experiments.cli",
            "experiment",
            "ui",
            "cmp-a",
            "--port",
            "0",
            "--storage",
            runs.storage,
        ],
        cwd=runs.workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("open http://"):
                yield process, line.split()[1], lines
                break
        else:
            pytest.fail(f"the dashboard printed no URL: {lines}")
        if process.poll() is not None and not lines[-1].startswith("open"):
            pytest.fail(f"the dashboard exited {process.returncode}: {process.stderr.read()}")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def study_url(url: str) -> tuple[str, int]:
    base, _, path = url.partition("/dashboard/studies/")
    return base, int(path)


def test_dashboard_serves_the_experiments_on_loopback_and_stops_on_ctrl_c(dashboard):
    process, url, _ = dashboard
    assert url.startswith("http://127.0.0.1:")
    base, study_id = study_url(url)
    studies = {s["study_name"]: s for s in get(f"{base}/api/studies")["study_summaries"]}
    assert {"cmp-a", "cmp-b"} <= set(studies) and studies["cmp-a"]["study_id"] == study_id
    trials = get(f"{base}/api/studies/{study_id}")["trials"]
    assert [t["user_attrs"] for t in trials if t["number"] == 0]  # Katib's trial record rides along

    process.send_signal(signal.SIGINT)  # Ctrl-C
    try:
        code = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(
            f"Ctrl-C did not stop the dashboard within 30 s; stdout: {out!r}; stderr: {err[-2000:]!r}"
        )
    out, err = process.communicate()
    assert code == 0 and "stopped" in out and "Traceback" not in err, (out, err)


def test_dashboard_serves_the_learning_curves_as_intermediate_values(dashboard):
    """Needs the local backend to report each objective observation to Optuna (issue 9, first bullet)."""
    _, url, _ = dashboard
    base, study_id = study_url(url)
    trials = sorted(get(f"{base}/api/studies/{study_id}")["trials"], key=lambda t: t["number"])
    assert len(trials) == 6
    curves = [[(v["step"], v["value"]) for v in t["intermediate_values"]] for t in trials]
    assert curves[0] == [(1, 0.5), (2, 0.6), (3, 0.7)]
    assert curves[2] == [(1, 0.1), (2, 0.1)]  # early stopped at its 2nd report
    assert curves[5] == [(1, 0.95), (2, 0.96), (3, 0.97)]  # the trial the resume ran


def test_missing_dashboard_gets_the_pip_line(runs, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)
    assert main(["experiment", "ui", "--storage", runs.storage]) == 1
    assert "pip install 'optuna-dashboard>=0.17'" in capsys.readouterr().err


def test_unknown_experiment_is_a_clear_error(runs, capsys):
    assert main(["experiment", "ui", "nope", "--storage", runs.storage]) == 1
    err = capsys.readouterr().err
    assert "no experiment named 'nope'" in err and "(known: cmp-a, cmp-b)" in err
