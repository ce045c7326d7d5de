"""The cluster backend: Katib runs the experiment; this side creates, reads, patches and deletes its objects.

backend = ClusterBackend(namespace="kubeflow-user", context="kind-katib-suite")
handle = backend.submit(load_experiment("exp.yaml", backend="cluster"))   # pre-flight, then create
handle.wait(progress=print)                                               # polls until Katib ends it

Transport is the kubeflow-katib SDK's ``KatibClient`` (and the ``kubernetes`` client it holds). Two of its
0.19 calls cannot be used with the kubernetes client 37 this project installs, both because that client's
methods are pydantic-validated: ``get_experiment`` / ``list_trials`` deserialize with Katib's own ApiClient,
which fails on any ``metadata.labels`` / ``finalizers`` ("no attribute 'Dict[str, str]'", so on every real
Trial), and ``edit_experiment_budget`` hands a ``V1beta1Experiment`` to ``patch_namespaced_custom_object``,
which accepts only a dict. Reads therefore go through ``KatibClient.custom_api`` and become the same SDK
models through the spec's deserializer, and the budget is a merge patch of the three counts through the same
``custom_api`` (what ``edit_experiment_budget`` means to send). Tests pin both SDK failures, so a fixed SDK
is noticed.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from experiments._kube import REQUEST_TIMEOUT
from experiments.backends._protocol import (
    EXPERIMENT_FAILED,
    EXPERIMENT_SUCCEEDED,
    ExperimentStatus,
    ExperimentSummary,
    Observation,
    ProgressCallback,
    TrialRecord,
)
from experiments.backends.cluster import _convert
from experiments.backends.cluster._config import KubeTarget, connect, resolve
from experiments.backends.cluster._errors import (
    ClusterError,
    ClusterNotFoundError,
    ClusterUnreachableError,
    KubeconfigError,
    Target,
    api_errors,
)
from experiments.errors import UsageError
from experiments.spec import Experiment

GROUP, VERSION, EXPERIMENTS, TRIALS = "kubeflow.org", "v1beta1", "experiments", "trials"
DB_MANAGER_ENV = "KATIB_DB_MANAGER_ADDRESS"
POLL_SECONDS = 10.0


def _model(data: Mapping[str, Any], klass: str) -> Any:
    # The spec's deserializer builds Katib models itself and kubernetes models with the kubernetes client.
    from experiments.spec._serialize import _deserialize

    return _deserialize(dict(data), klass)


class ClusterExperiment:
    """A handle on one Katib Experiment. Katib's controller runs it: ``wait`` only polls."""

    detached = True  # it runs on the cluster whether or not anyone watches

    def __init__(self, backend: ClusterBackend, name: str, obj: Any = None):
        self.backend = backend
        self.name = name
        self._obj = obj
        self._experiment: Experiment | None = None
        self.event = "created"  # what the last call did to it, for detach()'s message

    @property
    def namespace(self) -> str:
        return self.backend.namespace

    def _fetch(self) -> Any:
        self._obj = self.backend.read_experiment(self.name)
        self._experiment = None
        return self._obj

    @property
    def experiment(self) -> Experiment:
        if self._experiment is None:
            from experiments.spec import SpecError, from_sdk

            obj = self._obj if self._obj is not None else self._fetch()
            try:
                self._experiment = from_sdk(obj)
            except SpecError as error:
                raise ClusterError(
                    f"experiment {self.namespace}/{self.name} on the cluster is not one this tool can read: "
                    f"{error}; inspect it with `kubectl -n {self.namespace} get experiment {self.name} -o yaml`"
                ) from None
        return self._experiment

    def trials(self) -> Sequence[TrialRecord]:
        return self.backend.trial_records(self.name, self.experiment)

    def status(self) -> ExperimentStatus:
        obj = self._fetch()
        return _convert.experiment_status(obj, self.experiment, self.trials())

    def optimal_trial(self) -> TrialRecord | None:
        from experiments.ranking import optimal_trial

        return optimal_trial(self.trials(), self.experiment.objective)

    def wait(
        self, progress: ProgressCallback | None = None, timeout: float | None = None
    ) -> ExperimentStatus:
        """Poll until Katib ends the experiment (Succeeded / Failed) or ``timeout`` seconds pass."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status()
            if progress is not None:
                progress(status)
            if status.condition in (EXPERIMENT_SUCCEEDED, EXPERIMENT_FAILED):
                return status
            if deadline is not None and time.monotonic() >= deadline:
                return status
            time.sleep(self.backend.poll_interval)

    def detach(self) -> str:
        """What to tell the user once the experiment is on the cluster (nothing runs here)."""
        flags = self.backend.flags()
        return (
            f"experiment {self.namespace}/{self.name} {self.event}; Katib runs it on the cluster.\n"
            f"  follow it:  katib experiment watch {self.name}{flags}\n"
            f"  trials:     katib experiment trials {self.name}{flags}\n"
            f"  stop it:    katib experiment delete {self.name}{flags} --yes"
        )

    def __repr__(self) -> str:
        return f"ClusterExperiment(name={self.name!r}, namespace={self.namespace!r})"


class ClusterBackend:
    """The backend protocol on Kubeflow Katib, through ``KatibClient``. Connects on first use."""

    name = "cluster"

    def __init__(
        self,
        namespace: str | None = None,
        context: str | None = None,
        kubeconfig: str | None = None,
        *,
        storage: str | None = None,
        workdir: Path | None = None,
        db_manager_address: str | None = None,
        poll_interval: float = POLL_SECONDS,
        request_timeout: float | None = None,
    ):
        if storage:
            raise UsageError(
                "--storage is the local backend's; on a cluster Katib keeps the experiments (drop --storage, "
                "use --namespace / --context)"
            )
        self._namespace, self._context, self._kubeconfig = namespace, context, kubeconfig
        self.workdir = workdir
        # Trial metrics with timestamps come from Katib's db-manager (gRPC); without it, Trial status only.
        self.db_manager_address = db_manager_address or os.environ.get(DB_MANAGER_ENV) or None
        self.poll_interval = poll_interval
        self.request_timeout = request_timeout or REQUEST_TIMEOUT  # per request: connect, then read
        self._resolved: KubeTarget | None = None
        self._client: Any = None
        self._server: str | None = None

    # -- where --------------------------------------------------------------------------------------
    @property
    def kube(self) -> KubeTarget:
        if self._resolved is None:
            self._resolved = resolve(self._namespace, self._context, self._kubeconfig)
        return self._resolved

    @property
    def namespace(self) -> str:
        return self._namespace or self.kube.namespace

    def namespace_for(self, experiment: Experiment) -> str:
        """--namespace, else the Experiment's metadata.namespace, else the context's (kubectl's order).

        Reads the kubeconfig file only, so ``--dry-run`` works with no cluster (and no kubeconfig)."""
        if self._namespace:
            return self._namespace
        if experiment.namespace:
            return experiment.namespace
        try:
            return self.kube.namespace
        except KubeconfigError:
            return "default"

    def flags(self) -> str:
        """The flags that reach this cluster again, for suggested commands."""
        out = " --backend cluster"
        try:
            out += f" --namespace {self.namespace}"
        except KubeconfigError:
            pass
        if self._context:
            out += f" --context {self._context}"
        if self._kubeconfig:
            out += f" --kubeconfig {self._kubeconfig}"
        if self.request_timeout != REQUEST_TIMEOUT:
            out += f" --request-timeout {self.request_timeout:g}"
        return out

    def target(self, what: str, namespace: str | None = None) -> Target:
        self.client  # noqa: B018  (loads the kubeconfig, which names the server; nothing is sent)
        return Target(what, namespace or self.namespace, self.kube.context, self._server)

    def adopt(self, name: str) -> None:
        """Look where ``name`` was submitted from this directory (``_record``) for what the flags leave unset."""
        from experiments.backends.cluster._record import recall

        entry = recall(self.workdir, name)
        if entry is None or self._client is not None or self._resolved is not None:
            return
        self._namespace = self._namespace or entry.get("namespace")
        self._context = self._context or entry.get("context")
        self._kubeconfig = self._kubeconfig or entry.get("kubeconfig")

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client, self._server = connect(self.kube, self.request_timeout)
        return self._client

    # -- what is sent -------------------------------------------------------------------------------
    def manifest(self, experiment: Experiment, *, name: str | None = None) -> dict[str, Any]:
        """The Experiment object ``submit`` creates (``--dry-run`` prints exactly this).

        Built as the SDK model (``V1beta1Experiment``) and serialized by the SDK's ApiClient, so only what the
        model knows is sent, under Katib's field names."""
        from kubeflow.katib import ApiClient

        from experiments.spec import to_sdk

        exp = dataclasses.replace(experiment, name=name or experiment.name)
        exp = dataclasses.replace(exp, namespace=self.namespace_for(exp))
        return ApiClient().sanitize_for_serialization(to_sdk(exp))

    # -- the protocol -------------------------------------------------------------------------------
    def submit(self, experiment: Experiment, *, name: str | None = None) -> ClusterExperiment:
        from experiments.backends.cluster._preflight import preflight

        body = self.manifest(experiment, name=name)
        namespace = body["metadata"]["namespace"]
        if self._namespace is None:
            self._namespace = namespace  # later calls (get, trials) look where it was created
        exp_name = body["metadata"]["name"]
        target = self.target(f"experiment {namespace}/{exp_name}", namespace)
        preflight(self.client, body, namespace, target)
        with api_errors("create", target):
            self.client.create_experiment(body, namespace=namespace)
        from experiments.backends.cluster._record import remember

        remember(self.workdir, exp_name, namespace, self.kube.context, self._kubeconfig)
        return ClusterExperiment(self, exp_name)

    def read_experiment(self, name: str) -> Any:
        self.adopt(name)
        ns = self.namespace
        with api_errors("read", self.target(f"experiment {name!r}")):
            data = self.client.custom_api.get_namespaced_custom_object(GROUP, VERSION, ns, EXPERIMENTS, name)
        return _model(data, "V1beta1Experiment")

    def get(self, name: str) -> ClusterExperiment:
        return ClusterExperiment(self, name, self.read_experiment(name))

    def read_trials(self, name: str) -> list[Any]:
        ns = self.namespace
        with api_errors("list", self.target(f"trials of experiment {name!r}")):
            data = self.client.custom_api.list_namespaced_custom_object(
                GROUP, VERSION, ns, TRIALS, label_selector=f"{_convert.EXPERIMENT_LABEL}={name}"
            )
        return _convert.creation_order([_model(item, "V1beta1Trial") for item in data.get("items") or []])

    def observations(self, trial: str) -> tuple[Observation, ...]:
        """Every reported value with its time, from Katib's db-manager (``KatibClient.get_trial_metrics``)."""
        if not self.db_manager_address:
            return ()
        try:
            logs = self.client.get_trial_metrics(
                trial, namespace=self.namespace, db_manager_address=self.db_manager_address, timeout=15
            )
        except RuntimeError as error:
            raise ClusterUnreachableError(
                f"cannot read the metrics of trial {trial} from Katib's db-manager at {self.db_manager_address} "
                f"({str(error).splitlines()[0][:160]}); port-forward it "
                "(`kubectl -n kubeflow port-forward svc/katib-db-manager 6789`) and set "
                f"{DB_MANAGER_ENV}=localhost:6789, or unset {DB_MANAGER_ENV} to read the Trials' status only"
            ) from None
        return _convert.observations_from_logs(logs)

    def trial_records(self, name: str, experiment: Experiment) -> list[TrialRecord]:
        from experiments.collector import metric_names, summarize

        names = metric_names(experiment.objective)
        records = []
        for trial in self.read_trials(name):
            observations = self.observations(trial.metadata.name)
            record = _convert.trial_record(trial, self._output_dir(experiment, trial), observations)
            if not record.metrics and observations:
                # Katib fills status.observation when the trial ends; until then the db-manager has the values.
                record = dataclasses.replace(record, metrics=summarize(observations, names))
            records.append(record)
        return records

    def _output_dir(self, experiment: Experiment, trial: Any) -> str | None:
        from experiments.spec import SpecError
        from experiments.spec._lifecycle import trial_output_location

        assignments = {a.name: a.value for a in (trial.spec.parameter_assignments or [])}
        try:
            return trial_output_location(experiment, assignments, trial.metadata.name, self.namespace)
        except SpecError:
            return None  # assignments the template cannot take: no location to promote from

    def resume(
        self,
        name: str,
        *,
        max_trial_count: int | None = None,
        parallel_trial_count: int | None = None,
        max_failed_trial_count: int | None = None,
    ) -> ClusterExperiment:
        from experiments.spec._lifecycle import resume_experiment

        handle = self.get(name)
        condition, reason, _ = _convert.experiment_condition(handle._obj.status)
        finished = condition in (EXPERIMENT_SUCCEEDED, EXPERIMENT_FAILED)
        counts = {
            "maxTrialCount": max_trial_count,
            "parallelTrialCount": parallel_trial_count,
            "maxFailedTrialCount": max_failed_trial_count,
        }
        if not finished and all(v is None for v in counts.values()):
            raise UsageError(
                f"experiment {self.namespace}/{name} is {condition} and Katib keeps running it; to change its "
                "budget pass --max-trials / --parallel-trials / --max-failed-trials"
            )
        # Katib's resume rules, the same function the local backend applies.
        resume_experiment(
            handle.experiment,
            finished=finished,
            reason=reason,
            max_trial_count=max_trial_count,
            parallel_trial_count=parallel_trial_count,
            max_failed_trial_count=max_failed_trial_count,
        )
        patch = {"spec": {k: v for k, v in counts.items() if v is not None}}
        with api_errors("patch", self.target(f"experiment {name!r}")):
            self.client.custom_api.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, EXPERIMENTS, name, patch
            )
        resumed = ClusterExperiment(self, name)
        resumed.event = "updated (" + ", ".join(f"{k}={v}" for k, v in patch["spec"].items()) + ")"
        return resumed

    def list(self) -> Sequence[ExperimentSummary]:
        from experiments.spec import SpecError, from_sdk

        with api_errors("list", self.target(f"experiments in namespace {self.namespace}")):
            data = self.client.custom_api.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, EXPERIMENTS
            )
        rows = []
        for item in data.get("items") or []:
            obj = _model(item, "V1beta1Experiment")
            try:
                experiment = from_sdk(obj)
            except SpecError:
                experiment = None  # listed all the same, without a best value
            rows.append(_convert.summary(obj, experiment))
        return rows

    def delete(self, name: str) -> None:
        # Katib's Trials (and their jobs) carry owner references to the Experiment: the API server's
        # garbage collector removes them. Checkpoints on S3 stay (promote-best may still want them).
        from experiments.backends.cluster._record import forget

        self.adopt(name)
        with api_errors("delete", self.target(f"experiment {name!r}")):
            self.client.delete_experiment(name, namespace=self.namespace)
        forget(self.workdir, name)

    def logs(self, name: str, trial: str) -> Mapping[str, Sequence[str]]:
        from experiments.backends.cluster._logs import trial_logs

        self.adopt(name)
        ns = self.namespace
        with api_errors("read", self.target(f"trial {trial!r} of experiment {name!r}")):
            obj = self.client.custom_api.get_namespaced_custom_object(GROUP, VERSION, ns, TRIALS, trial)
        owner = ((obj.get("metadata") or {}).get("labels") or {}).get(_convert.EXPERIMENT_LABEL)
        if owner != name:
            raise ClusterNotFoundError(
                f"trial {trial} does not belong to experiment {name} (its experiment: {owner}); list the trials "
                f"with `katib experiment trials {name}{self.flags()}`"
            )
        return trial_logs(self.client, name, obj, self.target(f"trial {trial!r}"))
