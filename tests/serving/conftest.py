"""Fixtures for serving tests: a real tiny checkpoint, experiments recorded in the local store, moto S3.

Shared by the promote-best and predictor tests: add fixtures here, keep the existing ones as they are.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from experiments.spec import (
    Algorithm,
    Experiment,
    FeasibleSpace,
    MetricStrategy,
    Objective,
    Parameter,
    TrialParameter,
    TrialTemplate,
)
from tests.k8s_standin import k8s_standin, kubeconfig  # noqa: F401  (the stand-in API server fixtures)
from tests.serving.predictor_server import predictor, secured_predictor  # noqa: F401  (local predictor servers)


# -- a real tiny checkpoint ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """config.json (topic id2label), model.safetensors and tokenizer files of the trainer's tiny RoBERTa."""
    from trainer import data, modeling

    cache = tmp_path_factory.mktemp("serving-cache")
    raw = data.load_raw("synthetic", str(cache), 400, 50)
    tokenizer = modeling.load_tokenizer("tiny", str(cache), raw.fingerprint, raw.train["text"])
    model = modeling.load_model("tiny", str(cache), tokenizer, seed=1)
    folder = tmp_path_factory.mktemp("tiny-checkpoint")
    model.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    return folder


def history_rows(values: Sequence[float], metric: str = "eval_accuracy") -> list[dict[str, float]]:
    return [
        {"epoch": float(i), "step": 10 * i, metric: v, "eval_loss": 2.0 - v} for i, v in enumerate(values, 1)
    ]


def write_checkpoint(
    tiny: Path, target: Path, experiment: str, trial: str, values: Sequence[float], **overrides
) -> Path:
    """A trial's output_dir as the trainer leaves it: the model files, then trial.json last."""
    shutil.copytree(tiny, target, dirs_exist_ok=True)
    history = history_rows(values)
    record = {
        "schema_version": 1,
        "trial_name": trial,
        "experiment_name": experiment,
        "output_dir": str(target),
        "hyperparameters": {"learning_rate": 0.001, "global_batch_size": 16},
        "global_batch_size": 16,
        "world_size": 1,
        "model": {"model_name_or_path": "tiny", "num_parameters": 1234},
        "dataset": {"name": "synthetic", "fingerprint": "f00d"},
        "metrics": {"final": history[-1] if history else {}, "best": {}, "history": history},
        "versions": {"torch": "x"},
        "files": sorted(p.name for p in tiny.iterdir()),
    }
    record.update(overrides)
    (target / "trial.json").write_text(json.dumps(record))
    return target


def upload_checkpoint(tiny: Path, staging: Path, uri: str, experiment: str, spec: TrialSpec) -> None:
    """An S3 output_dir as the trainer leaves it: model files first, trial.json last."""
    from trainer import s3

    write_checkpoint(tiny, staging, experiment, spec.name, spec.values, output_dir=uri)
    trial_json = staging / "trial.json"
    moved = staging.parent / f"{spec.name}-trial.json"
    trial_json.rename(moved)
    s3.upload_dir(staging, uri)
    s3.upload_file(moved, s3.join_key(uri, "trial.json"))


# -- experiments recorded through the local store's public API --------------------------------------
def promote_experiment(name: str) -> Experiment:
    return Experiment(
        name=name,
        objective=Objective(
            type="maximize",
            objective_metric_name="eval_accuracy",
            additional_metric_names=("eval_loss",),
            metric_strategies=(MetricStrategy("eval_loss", "min"),),
        ),
        algorithm=Algorithm("random"),
        parameters=(Parameter("lr", "double", FeasibleSpace(min="0.0001", max="0.01")),),
        trial_template=TrialTemplate(
            trial_parameters=(TrialParameter("learningRate", "lr"),),
            trial_spec={"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {"containers": [
                {"name": "training", "image": "x", "command": ["python", "-m", "trainer.train",
                 "--learning_rate=${trialParameters.learningRate}"]}]}}}},
            primary_container_name="training",
        ),
        namespace="default",
        max_trial_count=4,
    )  # fmt: skip


@dataclass(frozen=True)
class TrialSpec:
    name: str
    values: tuple[float, ...]  # eval_accuracy per evaluation, as reported
    condition: str = "Succeeded"
    output_dir: str | None = None  # rendered --output_dir; None: <root>/<name>


def record_experiment(
    storage: str, workdir: Path, experiment: Experiment, trials: Sequence[TrialSpec]
) -> None:
    """Write the experiment and its trials as the local backend's runner would (the Store's API)."""
    import optuna

    from experiments.backends._protocol import Observation
    from experiments.backends.local._store import Store, observations_to_json
    from experiments.spec import to_dict

    store = Store(storage)
    study = store.create_study(experiment.name, "maximize", optuna.samplers.RandomSampler(seed=1))
    store.set_study_attrs(
        experiment.name, spec=to_dict(experiment), backend="local", workdir=str(workdir),
        created="2026-01-01T00:00:00+00:00", condition="Succeeded", reason="ExperimentMaxTrialsReached",
    )  # fmt: skip
    for spec in trials:
        trial = study.ask()
        observations = []
        for row in history_rows(spec.values):
            observations += [Observation("eval_accuracy", f"{row['eval_accuracy']:g}"),
                             Observation("eval_loss", f"{row['eval_loss']:g}")]  # fmt: skip
        store.set_trial_attrs(
            trial._trial_id,
            katib_trial=spec.name,
            parameters={"lr": "0.001"},
            observations=observations_to_json(observations),
            output_dir=spec.output_dir,
            condition=spec.condition,
        )
        state = optuna.trial.TrialState.PRUNED if spec.condition == "EarlyStopped" else None
        if state is None:
            study.tell(trial, max(spec.values))
        else:
            study.tell(trial, state=state)


@pytest.fixture
def recorded(tmp_path: Path, tiny_checkpoint: Path) -> Callable[..., str]:
    """Record an experiment whose trials have real tiny checkpoints; returns the storage URL.

    ``recorded("exp", [TrialSpec(...)], checkpoints={"t1": True})``: by default every trial whose condition
    is Succeeded gets a complete checkpoint in ``tmp_path/runs/<trial>``; an EarlyStopped one gets none.
    """
    storage = f"sqlite:///{tmp_path / 'katib.db'}"

    def make(name: str, trials: Sequence[TrialSpec], checkpoints: dict[str, bool] | None = None) -> str:
        resolved = []
        for spec in trials:
            out = spec.output_dir or str(tmp_path / "runs" / spec.name)
            resolved.append(TrialSpec(spec.name, spec.values, spec.condition, out))
            wanted = (checkpoints or {}).get(spec.name, spec.condition == "Succeeded")
            if wanted and out.startswith("s3://"):
                upload_checkpoint(tiny_checkpoint, tmp_path / "staging" / spec.name, out, name, spec)
            elif wanted:
                write_checkpoint(tiny_checkpoint, Path(tmp_path / out), name, spec.name, spec.values)
        record_experiment(storage, tmp_path, promote_experiment(name), resolved)
        return storage

    return make


# -- moto S3 on 127.0.0.1, with a request log --------------------------------------------------------
class RecordingMotoServer:
    """moto's ThreadedMotoServer with a WSGI middleware that records every request the server receives."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.requests: list[dict[str, str]] = []
        # A test sets ``fail`` to a predicate over a request: matching requests get a 403 AccessDenied.
        self.fail: Callable[[dict[str, str]], bool] | None = None
        outer = self

        class Server(ThreadedMotoServer):
            def _server_entry(self) -> None:  # moto's own, with the app wrapped
                from moto.moto_server.werkzeug_app import (
                    DomainDispatcherApplication,
                    MotoRequestHandler,
                    create_backend_app,
                )
                from werkzeug.serving import make_server

                app = DomainDispatcherApplication(create_backend_app)

                def recording(environ, start_response):
                    request = {
                        "method": environ["REQUEST_METHOD"],
                        "path": environ.get("PATH_INFO", ""),
                        "query": environ.get("QUERY_STRING", ""),
                        "copy_source": environ.get("HTTP_X_AMZ_COPY_SOURCE", ""),
                    }
                    outer.requests.append(request)
                    if outer.fail is not None and outer.fail(request):
                        body = b"<Error><Code>AccessDenied</Code><Message>injected failure</Message></Error>"
                        start_response("403 Forbidden", [("Content-Type", "application/xml")])
                        return [body]
                    return app(environ, start_response)

                self._server = make_server(
                    self._ip_address, self._port, recording, True, request_handler=MotoRequestHandler
                )
                self._server_ready_event.set()
                self._server.serve_forever()

        self.server = Server(ip_address="127.0.0.1", port=0, verbose=False)

    def start(self) -> str:
        self.server.start()
        host, port = self.server.get_host_and_port()
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="session")
def moto_server():
    server = RecordingMotoServer()
    server.url = server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def moto(moto_server: RecordingMotoServer) -> RecordingMotoServer:
    """The session's moto server with a fresh request log and no injected failures."""
    moto_server.requests.clear()
    moto_server.fail = None
    yield moto_server
    moto_server.fail = None


@pytest.fixture(scope="session")
def s3_server(moto_server: RecordingMotoServer) -> str:
    """The shared ``s3_env`` / ``bucket`` fixtures (tests/conftest.py) use the recording server here."""
    return moto_server.url
