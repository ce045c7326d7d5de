"""Shared set-up for the local backend tests: Experiments that run the stand-in trial program."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from experiments.spec import (
    Algorithm,
    EarlyStopping,
    Experiment,
    FeasibleSpace,
    MetricsCollector,
    Objective,
    Parameter,
    Setting,
    TrialParameter,
    TrialTemplate,
)

STANDIN = Path(__file__).with_name("standin_trial.py")
REPO_ROOT = Path(__file__).resolve().parents[3]


def pytorchjob(args: list[str], workers: int = 1) -> dict:
    container = {
        "name": "pytorch",
        "image": "docker.io/katib-suite/trainer:ignored",
        "command": ["python", str(STANDIN)],
        "args": args,
        "env": [{"name": "STANDIN_FROM_TEMPLATE", "value": "yes"}],
    }
    replica = {"restartPolicy": "OnFailure", "template": {"spec": {"containers": [container]}}}
    specs = {"Master": {"replicas": 1, **replica}}
    if workers:
        specs["Worker"] = {"replicas": workers, **replica}
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "spec": {"pytorchReplicaSpecs": specs}}


def make_experiment(
    name: str,
    tmp_path: Path,
    *,
    plan: str = "0.5",
    sleep: float = 0.0,
    extra_args: tuple[str, ...] = (),
    workers: int = 1,
    max_trials: int = 2,
    parallel: int = 1,
    max_failed: int | None = None,
    goal: float | None = None,
    collector: MetricsCollector | None = None,
    early_stopping: EarlyStopping | None = None,
    resume_policy: str | None = None,
) -> Experiment:
    args = [
        "--lr=${trialParameters.learningRate}",
        "--tag=${trialParameters.tag}",
        f"--plan={plan}",
        f"--plan-dir={tmp_path / 'plan'}",
        f"--sleep={sleep}",
        f"--record-dir={tmp_path / 'records'}",
        *extra_args,
    ]
    return Experiment(
        name=name,
        objective=Objective(type="maximize", objective_metric_name="accuracy", goal=goal),
        algorithm=Algorithm("random", (Setting("random_state", "7"),)),
        parameters=(
            Parameter("lr", "double", FeasibleSpace(min="0.01", max="0.1")),
            # A value a shell would run: the local backend must pass it as one literal argument.
            Parameter("tag", "categorical", FeasibleSpace(list=("a;touch PWNED",))),
        ),
        trial_template=TrialTemplate(
            trial_parameters=(
                TrialParameter("learningRate", "lr"),
                TrialParameter("tag", "tag"),
            ),
            trial_spec=pytorchjob(args, workers),
            primary_container_name="pytorch",
            primary_pod_labels={"training.kubeflow.org/job-role": "master"},
        ),
        namespace="default",
        metrics_collector=collector or MetricsCollector(kind="StdOut"),
        early_stopping=early_stopping,
        parallel_trial_count=parallel,
        max_trial_count=max_trials,
        max_failed_trial_count=max_failed,
        resume_policy=resume_policy,
    )


def runner_subprocess(storage: str, workdir: Path, name: str) -> subprocess.Popen:
    """Drive an already submitted experiment from another process (to interrupt or SIGKILL it)."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from experiments.backends.local import LocalBackend\n"
        f"handle = LocalBackend(storage={storage!r}, workdir=Path({str(workdir)!r})).get({name!r})\n"
        "try:\n"
        "    handle.wait()\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(130)\n"
    )
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    return subprocess.Popen([sys.executable, "-c", code], cwd=workdir, env=env)


def wait_until(predicate, timeout: float = 60.0, every: float = 0.1, process: subprocess.Popen | None = None):
    """Poll ``predicate`` until it is truthy; fail early if ``process`` (the runner) exits meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"the runner exited with code {process.returncode} before the condition held"
            )
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")
