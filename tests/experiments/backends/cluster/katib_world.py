"""A cluster as Katib leaves it, on the stand-in API server: the platform installed, and Experiments, Trials,
trial pods with their logs, and Katib's db-manager (gRPC) holding the observation logs.

The objects follow what Katib v0.19's controllers write (experiment_controller.go, trial_controller.go,
status_util.go): Trials labelled ``katib.kubeflow.org/experiment`` with an owner reference, their
``spec.parameterAssignments``, ``runSpec`` (the rendered job), ``primaryPodLabels``; conditions appended in
order with the finished ones' Running flipped to "False"; ``status.observation.metrics`` min/max/latest
strings; trial pods labelled ``katib.kubeflow.org/trial`` plus the Training Operator's replica labels.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from experiments.spec import Experiment, load_experiment, render_trial, to_dict

REPO_ROOT = Path(__file__).resolve().parents[4]
NS = "kubeflow-user"
SA, SECRET = "katib-suite-trainer", "katib-suite-s3"
IMAGE = "registry.example.com/katib-suite/trainer:1.0"
PLACEHOLDER = "ghcr.io/katib-suite/trainer:0.1.0"
EXP_API = "kubeflow.org/v1beta1"
INJECTION = {"katib.kubeflow.org/metrics-collector-injection": "enabled"}
COLLECTOR = "metrics-logger-and-collector"


def experiment_file(tmp_path: Path, name: str = "quickstart", image: str = IMAGE) -> Path:
    """infra/kind/quickstart.yaml (the cluster quickstart) with a built image, under ``name``."""
    text = (REPO_ROOT / "infra" / "kind" / "quickstart.yaml").read_text()
    text = text.replace(PLACEHOLDER, image).replace("name: quickstart\n", f"name: {name}\n", 1)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def cluster_experiment(tmp_path: Path, name: str = "quickstart", image: str = IMAGE) -> Experiment:
    return load_experiment(experiment_file(tmp_path, name, image), backend="cluster")


def install_platform(standin, namespace: str = NS, *, labelled: bool = True, crds: bool = True) -> None:
    """What infra/install.sh leaves: Katib + Training Operator CRDs, the labelled namespace, SA, Secret."""
    if crds:
        standin.install_crds("katib", "training")
    standin.add_namespace(namespace, labels=INJECTION if labelled else {})
    standin.add(
        "v1",
        "serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SA}},
        namespace=namespace,
    )
    standin.add(
        "v1",
        "secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET}, "type": "Opaque", "data": {}},
        namespace=namespace,
    )


@dataclass
class Outcome:
    """How one trial ended: its assignments, condition and the objective values it reported, in order."""

    suffix: str
    lr: str
    batch_size: str
    condition: str = "Succeeded"
    accuracy: Sequence[str] = ("0.5",)
    losses: Sequence[str] = ("1.0",)
    log: list[str] = field(default_factory=list)


def _cond(kind: str, status: str, reason: str, message: str, when: str) -> dict:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": when,
        "lastTransitionTime": when,
    }


def _metric(name: str, values: Sequence[str]) -> dict:
    floats = [float(v) for v in values]
    return {
        "name": name,
        "min": values[floats.index(min(floats))],
        "max": values[floats.index(max(floats))],
        "latest": values[-1],
    }


def trial_object(exp: Experiment, outcome: Outcome, namespace: str = NS, minute: int = 0) -> dict:
    name = f"{exp.name}-{outcome.suffix}"
    assignments = {"lr": outcome.lr, "batch_size": outcome.batch_size}
    start, end = f"2026-12-01T10:{minute:02d}:00Z", f"2026-12-01T10:{minute:02d}:50Z"
    conditions = [_cond("Created", "True", "TrialCreated", "Trial is created", start)]
    status: dict = {"startTime": start, "conditions": conditions}
    if outcome.condition == "Running":
        conditions.append(_cond("Running", "True", "TrialRunning", "Trial is running", start))
    else:
        conditions.append(_cond("Running", "False", "TrialRunning", "Trial is running", end))
        reason = {
            "Succeeded": "TrialSucceeded",
            "Failed": "TrialFailed",
            "EarlyStopped": "TrialEarlyStopped",
        }.get(outcome.condition, outcome.condition)
        conditions.append(_cond(outcome.condition, "True", reason, f"Trial {outcome.condition}", end))
        status["completionTime"] = end
        if outcome.condition in ("Succeeded", "EarlyStopped"):
            status["observation"] = {
                "metrics": [_metric("eval_accuracy", outcome.accuracy), _metric("eval_loss", outcome.losses)]
            }
    spec = to_dict(exp)["spec"]
    tt = spec["trialTemplate"]
    return {
        "apiVersion": EXP_API,
        "kind": "Trial",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": start,
            "labels": {"katib.kubeflow.org/experiment": exp.name},
            "finalizers": ["clean-metrics-in-db"],
            "ownerReferences": [
                {
                    "apiVersion": EXP_API,
                    "kind": "Experiment",
                    "name": exp.name,
                    "uid": "exp-uid",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "objective": spec["objective"],
            "parameterAssignments": [{"name": k, "value": v} for k, v in assignments.items()],
            "runSpec": {
                **render_trial(exp, assignments, name, namespace),
                "metadata": {"name": name, "namespace": namespace},
            },
            "metricsCollector": spec.get("metricsCollectorSpec", {"collector": {"kind": "StdOut"}}),
            "primaryContainerName": tt.get("primaryContainerName", "pytorch"),
            "primaryPodLabels": tt.get("primaryPodLabels", {"training.kubeflow.org/job-role": "master"}),
            "successCondition": tt.get("successCondition"),
            "failureCondition": tt.get("failureCondition"),
        },
        "status": status,
    }


def add_pods(standin, trial: str, lines: Sequence[str], namespace: str = NS) -> None:
    """The trial's Master (metrics sidecar printing the training output) and Worker pods, with logs."""
    for kind in ("master", "worker"):
        pod = f"{trial}-{kind}-0"
        labels = {
            "katib.kubeflow.org/trial": trial,
            "training.kubeflow.org/job-name": trial,
            "training.kubeflow.org/replica-type": kind,
            "training.kubeflow.org/replica-index": "0",
        }
        containers = [{"name": "pytorch", "image": IMAGE}]
        if kind == "master":
            labels["training.kubeflow.org/job-role"] = "master"
            containers.append({"name": COLLECTOR, "image": "kubeflowkatib/file-metrics-collector"})
        standin.add(
            "v1",
            "pods",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod, "labels": labels},
                "spec": {"containers": containers},
            },
            namespace=namespace,
        )
        if kind == "master":
            # Katib redirects the training process to a file the sidecar prints: pytorch's own log is empty.
            standin.set_pod_log(namespace, pod, "\n".join(lines) + "\n", container=COLLECTOR)
            standin.set_pod_log(namespace, pod, "", container="pytorch")
        else:
            standin.set_pod_log(
                namespace, pod, f"worker of {trial}: rank 1 prints no metrics\n", container="pytorch"
            )


def metric_lines(outcome: Outcome) -> list[str]:
    return [
        f"2026-12-01T10:00:{10 * i:02d}Z epoch={i + 1}.0 eval_loss={loss} eval_accuracy={acc}"
        for i, (acc, loss) in enumerate(zip(outcome.accuracy, outcome.losses, strict=False))
    ]


def play_katib(
    standin,
    exp: Experiment,
    outcomes: Sequence[Outcome],
    namespace: str = NS,
    condition: str = "Succeeded",
    reason: str = "ExperimentMaxTrialsReached",
) -> list[str]:
    """Create the Experiment (as submitted), its Trials, pods and logs, and end it as Katib would."""
    if standin.get(EXP_API, "experiments", exp.name, namespace) is None:
        body = to_dict(exp)
        body["metadata"]["namespace"] = namespace
        standin.add(EXP_API, "experiments", body, namespace=namespace)
    names = []
    for minute, outcome in enumerate(outcomes):
        trial = trial_object(exp, outcome, namespace, minute)
        standin.add(EXP_API, "trials", trial, namespace=namespace)
        add_pods(standin, trial["metadata"]["name"], outcome.log or metric_lines(outcome), namespace)
        names.append(trial["metadata"]["name"])
    succeeded = [n for n, o in zip(names, outcomes, strict=True) if o.condition == "Succeeded"]
    start, end = "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z"
    conditions = [_cond("Created", "True", "ExperimentCreated", "Experiment is created", start)]
    finished = condition in ("Succeeded", "Failed")
    conditions.append(
        _cond(
            "Running",
            "False" if finished else "True",
            "ExperimentRunning",
            "Experiment is running",
            end if finished else start,
        )
    )
    if finished:
        conditions.append(_cond(condition, "True", reason, f"Experiment has {condition.lower()}", end))

    def write(obj: dict) -> None:
        status = {
            "startTime": start,
            "conditions": conditions,
            "trials": len(names),
            "trialsSucceeded": len(succeeded),
            "succeededTrialList": succeeded,
            "currentOptimalTrial": {"observation": {}},
        }
        if finished:
            status["completionTime"] = end
        obj["status"] = copy.deepcopy(status)
        obj["metadata"].setdefault("finalizers", ["update-prometheus-metrics"])

    standin.update(EXP_API, "experiments", exp.name, namespace, write)
    return names


@contextmanager
def db_manager(observations: dict[str, list[tuple[str, str, str]]]) -> Iterator[tuple[str, list[str]]]:
    """Katib's db-manager on 127.0.0.1: trial -> [(rfc3339 time, metric, value)]. Yields (address, asked)."""
    import grpc
    import kubeflow.katib.katib_api_pb2 as pb
    import kubeflow.katib.katib_api_pb2_grpc as pb_grpc

    asked: list[str] = []

    class DBManager(pb_grpc.DBManagerServicer):
        def GetObservationLog(self, request, context):
            asked.append(request.trial_name)
            logs = [
                pb.MetricLog(time_stamp=t, metric=pb.Metric(name=n, value=v))
                for t, n, v in observations.get(request.trial_name, [])
            ]
            return pb.GetObservationLogReply(observation_log=pb.ObservationLog(metric_logs=logs))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_DBManagerServicer_to_server(DBManager(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", asked
    finally:
        server.stop(grace=None)
