"""Katib's mutating webhook, mirrored: pkg/apis/controller/experiments/v1beta1/experiment_defaults.go."""

from __future__ import annotations

import dataclasses

from experiments.spec._model import DEFAULT_METRICS_FILE, Experiment, FeasibleSpace, MetricStrategy

DEFAULT_PARALLEL_TRIAL_COUNT = 3
# The Go comment says LongRunning; the code (constants.go) sets Never. The code is what runs.
DEFAULT_RESUME_POLICY = "Never"
JOB_SUCCESS_CONDITION = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
JOB_FAILURE_CONDITION = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
KUBEFLOW_JOB_SUCCESS_CONDITION = 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
KUBEFLOW_JOB_FAILURE_CONDITION = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
KUBEFLOW_JOB_PRIMARY_POD_LABELS = {"training.kubeflow.org/job-role": "master"}
# MXJob is not here: it left the Training Operator (v1.8) and Katib's KubeflowJobKinds, so an MXJob
# template without its own success/failure conditions is rejected, as Katib's webhook does.
KUBEFLOW_JOB_KINDS = ("TFJob", "PyTorchJob", "XGBoostJob", "MPIJob")
# Kubeflow Trainer v2 (trainer.kubeflow.org TrainJob): Katib defaults these too (constants.go), the
# primary pod being the JobSet's "node" replicated job.
TRAINJOB_KIND = "TrainJob"
TRAINJOB_SUCCESS_CONDITION = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
TRAINJOB_FAILURE_CONDITION = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
TRAINJOB_PRIMARY_POD_LABELS = {"jobset.sigs.k8s.io/replicatedjob-name": "node"}
DEFAULT_TFEVENT_DIR = "/var/log/katib/tfevent/"
DEFAULT_PROMETHEUS_PATH = "/metrics"
DEFAULT_PROMETHEUS_PORT = 8080


def _objective(exp: Experiment):
    obj = exp.objective
    strategies = list(obj.metric_strategies)
    named = {s.name for s in strategies}
    by_type = {"minimize": "min", "maximize": "max"}.get(obj.type, "latest")
    if obj.objective_metric_name not in named:
        strategies.append(MetricStrategy(obj.objective_metric_name, by_type))
    # Katib gives additional metrics the objective's direction too (not "latest", whatever the comment says).
    for metric in obj.additional_metric_names:
        if metric not in named and metric != obj.objective_metric_name:
            strategies.append(MetricStrategy(metric, by_type))
            named.add(metric)
    return dataclasses.replace(obj, metric_strategies=tuple(strategies))


def _trial_template(exp: Experiment):
    tt = exp.trial_template
    if tt.trial_spec is None:
        return tt
    kind = tt.kind
    changes: dict = {}
    if kind == "Job":
        changes["success_condition"] = tt.success_condition or JOB_SUCCESS_CONDITION
        changes["failure_condition"] = tt.failure_condition or JOB_FAILURE_CONDITION
    elif kind in KUBEFLOW_JOB_KINDS:
        changes["success_condition"] = tt.success_condition or KUBEFLOW_JOB_SUCCESS_CONDITION
        changes["failure_condition"] = tt.failure_condition or KUBEFLOW_JOB_FAILURE_CONDITION
        changes["primary_pod_labels"] = dict(tt.primary_pod_labels) or dict(KUBEFLOW_JOB_PRIMARY_POD_LABELS)
    elif kind == TRAINJOB_KIND:
        changes["success_condition"] = tt.success_condition or TRAINJOB_SUCCESS_CONDITION
        changes["failure_condition"] = tt.failure_condition or TRAINJOB_FAILURE_CONDITION
        changes["primary_pod_labels"] = dict(tt.primary_pod_labels) or dict(TRAINJOB_PRIMARY_POD_LABELS)
    return dataclasses.replace(tt, **changes)


def _collector(exp: Experiment):
    mc = exp.metrics_collector
    if mc.kind == "File":
        return dataclasses.replace(
            mc,
            file_kind=mc.file_kind or "File",
            file_path=mc.file_path or DEFAULT_METRICS_FILE,
            file_format=mc.file_format or "TEXT",
        )
    if mc.kind == "TensorFlowEvent":
        return dataclasses.replace(
            mc, file_kind=mc.file_kind or "Directory", file_path=mc.file_path or DEFAULT_TFEVENT_DIR
        )
    if mc.kind == "PrometheusMetric":
        extra = {k: (dict(v) if isinstance(v, dict) else v) for k, v in mc.extra.items()}
        source = extra.setdefault("source", {})
        if isinstance(source, dict):
            http_get = dict(source.get("httpGet") or {})
            http_get["path"] = http_get.get("path") or DEFAULT_PROMETHEUS_PATH
            http_get["port"] = http_get.get("port") or DEFAULT_PROMETHEUS_PORT
            source["httpGet"] = http_get
        return dataclasses.replace(mc, extra=extra)
    return mc


def apply_defaults(exp: Experiment) -> Experiment:
    """What Katib's webhook sets before validation: counts, resume policy, metric strategies,
    success/failure conditions and primary pod labels for Job / Kubeflow jobs / TrainJob, collector sources,
    and the uniform distribution. Idempotent."""
    parameters = tuple(
        dataclasses.replace(p, feasible_space=dataclasses.replace(p.feasible_space, distribution="uniform"))
        if not p.feasible_space.distribution and p.feasible_space != FeasibleSpace()
        else p
        for p in exp.parameters
    )
    return dataclasses.replace(
        exp,
        parallel_trial_count=(
            exp.parallel_trial_count if exp.parallel_trial_count is not None else DEFAULT_PARALLEL_TRIAL_COUNT
        ),
        resume_policy=exp.resume_policy or DEFAULT_RESUME_POLICY,
        objective=_objective(exp),
        trial_template=_trial_template(exp),
        metrics_collector=_collector(exp),
        parameters=parameters,
    )
