"""Serve a promoted model here, speaking KServe's Hugging Face runtime protocols (v1 and v2).

    python -m serving.predictor --model_dir ./models/roberta-yahoo/v1 --model_name roberta-yahoo --http_port 8080
    AWS_ENDPOINT_URL=http://127.0.0.1:9000 python -m serving.predictor \\
        --model_dir s3://models/roberta-yahoo/v3/ --model_name roberta-yahoo --http_port 8080
    curl -s localhost:8080/v1/models/roberta-yahoo:predict -H 'Content-Type: application/json' \\
        -d '{"instances": ["Who won the cup final?"]}'
    # {"predictions":[5],"labels":["Sports"]}

The model is fetched the way KServe's storage initializer does (``kserve.storage.Storage.download``: s3://
with AWS_ENDPOINT_URL, gs://, local folders as they are) and served by ``kserve.ModelServer``:
``/v1/models/<m>:predict``, ``/v2/models/<m>/infer``, ``/v1/models/<m>``, ``/v2/health/{live,ready}``,
``/metrics``. Beyond the runtime: concurrent requests share forward passes (adaptive micro-batching),
answers carry topic names next to the class indices, probabilities on request, long texts are truncated
to the model's length, malformed requests get a 400 with the reason, an optional bearer token, and one
JSON access-log line per request on stdout. It listens on 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import kserve
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest
from prometheus_client import Histogram

from serving._access import note
from serving._batching import MicroBatcher, Served
from serving._protocol import Query, parse_v1, parse_v2, v1_answer, v2_answer
from serving.predict_errors import PredictorError

BATCH_SIZE = Histogram(
    "predictor_batch_size",
    "texts per forward pass (micro-batches of concurrent requests)",
    ["model_name"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
BATCH_REQUESTS = Histogram(
    "predictor_batch_requests",
    "requests sharing one forward pass",
    ["model_name"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)


@dataclass(frozen=True)
class PredictorOptions:
    max_batch_size: int = 32  # texts per forward pass
    max_batch_wait_ms: float = 5.0  # the longest a batch waits for more requests (under load only)
    max_instances: int = 256  # texts per request; more is a 400
    max_model_len: int | None = None  # tokens per text; default: the model's limit (RoBERTa: 512)
    device: str = "auto"
    return_probabilities: bool = False  # the default for requests that do not say
    auth_token: str | None = None
    log_payload: bool = False

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise PredictorError(f"--max_batch_size must be >= 1, but got {self.max_batch_size}")
        if self.max_batch_wait_ms < 0:
            raise PredictorError(f"--max_batch_wait_ms must be >= 0, but got {self.max_batch_wait_ms}")
        if self.max_instances < 1:
            raise PredictorError(f"--max_instances must be >= 1, but got {self.max_instances}")


def resolve_version(uri: str) -> str:
    """A model store's root (promote-best's DEST, holding a LATEST pointer) -> its latest version's URI;
    anything else as it is."""
    from kserve.logging import logger

    from experiments.errors import KatibSuiteError
    from serving.store import VersionStore
    from trainer.errors import TrainerError

    if "://" in uri and not uri.startswith(("s3://", "file://")):
        return uri
    try:
        store = VersionStore.open(uri.removeprefix("file://"))
        number = store.latest()
    except (KatibSuiteError, TrainerError, OSError) as error:
        raise PredictorError(f"cannot read {uri}: {error}") from None
    if number is None:
        return uri
    logger.info("%s is a model store: serving its LATEST version v%d", uri, number)
    return store.version_uri(number)


def fetch(uri: str) -> tuple[str, str | None]:
    """(local folder, a temporary folder to remove at exit or None); like KServe's storage initializer."""
    from kserve.storage import Storage

    uri = resolve_version(uri)
    if "://" in uri and not uri.startswith("file://"):
        target = tempfile.mkdtemp(prefix="predictor-model-")
        # The trailing slash matters: without it the prefix s3://b/m/v1 also matches v10/, v11/ (kserve#3776).
        source = uri.rstrip("/") + "/" if uri.startswith("s3://") else uri
        try:
            return Storage.download(source, out_dir=target), target
        except Exception as error:  # kserve raises bare Exception/RuntimeError, boto3 its own errors
            shutil.rmtree(target, ignore_errors=True)
            raise PredictorError(
                f"cannot fetch the model from {uri} ({type(error).__name__}: {str(error)[:200]}); check the "
                "URI and, for S3, the credentials and AWS_ENDPOINT_URL (MinIO / a local S3 server)"
            ) from None
    path = uri.removeprefix("file://")
    if not Path(path).is_dir():
        raise PredictorError(
            f"--model_dir {uri}: no such folder; pass a promoted version (DEST/v<N>/) or an s3:// prefix"
        )
    return Storage.download(path), None


@dataclass(frozen=True)
class _Answer:
    query: Query
    served: Served


class TextClassifier(kserve.Model):
    """A sequence-classification model behind KServe's data plane, with micro-batched forward passes."""

    def __init__(self, name: str, model_dir: str, options: PredictorOptions | None = None):
        super().__init__(name)
        self.model_dir = model_dir
        self.options = options or PredictorOptions()
        self.classifier: Any = None
        self.labels: list[str] = []  # topic name of each class index (config.json id2label)
        self.batcher: MicroBatcher | None = None
        self._temporary: str | None = None

    def load(self) -> bool:
        from serving._classifier import SequenceClassifier

        local, self._temporary = fetch(self.model_dir)
        try:
            self.classifier = SequenceClassifier(local, self.options.max_model_len, self.options.device)
        except BaseException:
            self.stop()  # the downloaded copy goes with the failed start
            raise
        self.labels = [self.classifier.id2label.get(i, str(i)) for i in range(self.classifier.num_labels)]
        self.batcher = MicroBatcher(
            self._rows,
            self.options.max_batch_size,
            self.options.max_batch_wait_ms,
            on_batch=self._observe,
        )
        self.batcher.call(["warm-up"])  # the first request should not pay for lazy initialisation
        self.ready = True
        return self.ready

    def stop(self) -> None:
        if self.batcher is not None:
            self.batcher.close()
        if self._temporary:
            shutil.rmtree(self._temporary, ignore_errors=True)
        super().stop()

    def _rows(self, texts: list[str]) -> list[tuple[int, list[float]]]:
        scores = self.classifier(texts)
        return list(zip(scores.indices, scores.probabilities, strict=True))

    def _observe(self, requests: int, texts: int) -> None:
        BATCH_SIZE.labels(model_name=self.name).observe(texts)
        BATCH_REQUESTS.labels(model_name=self.name).observe(requests)

    def get_input_types(self) -> list[dict]:
        return [{"name": "input-0", "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict]:
        n = self.classifier.num_labels if self.classifier else -1
        return [
            {"name": "output-0", "datatype": "INT64", "shape": [-1]},
            {"name": "labels", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, n]},
        ]

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Query:
        limit = self.options.max_instances
        if isinstance(payload, InferRequest):
            query = parse_v2(payload, limit)
            if query.request_id is None:  # v2 answers carry an id: the request's x-request-id
                query = replace(query, request_id=(headers or {}).get("x-request-id"))
        else:
            if isinstance(payload, (bytes, str)):
                # kserve 0.15 hands the raw body over when the content type is not exactly application/json
                # (e.g. "; charset=utf-8", or curl -d's form type): decode it here instead of failing with a 500.
                import orjson

                try:
                    payload = orjson.loads(payload)
                except orjson.JSONDecodeError as error:
                    raise InvalidInput(
                        f"the request body is not JSON ({error}); send a JSON object"
                    ) from None
            query = parse_v1(payload, limit)
        if query.return_probabilities is None:
            query = replace(query, return_probabilities=self.options.return_probabilities)
        note(model=self.name, protocol=query.protocol, instances=len(query.texts))
        if self.options.log_payload:
            note(payload=query.texts)
        return query

    async def predict(self, query: Query, headers: dict[str, str] | None = None) -> _Answer:
        served = await self.batcher.submit(query.texts)
        note(
            batch=served.batch_size,
            batch_requests=served.batch_requests,
            queued_ms=round(served.queued_ms, 3),
        )
        return _Answer(query, served)

    async def postprocess(self, answer: _Answer, headers: dict[str, str] | None = None, *_: Any) -> Any:
        indices = [index for index, _ in answer.served.results]
        probabilities = [row for _, row in answer.served.results]
        labels = [self.labels[i] for i in indices]
        if answer.query.protocol == "v2":
            return v2_answer(answer.query, self.name, indices, probabilities, labels)
        return v1_answer(answer.query, indices, probabilities, labels)


def build_parser() -> argparse.ArgumentParser:
    from kserve import model_server

    # kserve's own flags (--model_name, --http_port, ...) as every KServe model server takes them.
    parser = argparse.ArgumentParser(
        prog="python -m serving.predictor",
        description="Serve a sequence-classification model with KServe's ModelServer (v1 + v2 protocols).",
        parents=[model_server.parser],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model_dir", required=True, help="a model folder, or s3:// (AWS_ENDPOINT_URL) prefix"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--max_batch_size", type=int, default=32, help="texts per forward pass")
    parser.add_argument(
        "--max_batch_wait_ms",
        type=float,
        default=5.0,
        help="longest wait for more requests (under load only)",
    )
    parser.add_argument("--max_instances", type=int, default=256, help="texts per request; more is a 400")
    parser.add_argument(
        "--max_model_len", type=int, default=None, help="tokens per text (default: the model's limit)"
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument(
        "--return_probabilities",
        action="store_true",
        help='answer probabilities unless a request says "return_probabilities": false',
    )
    parser.add_argument(
        "--auth_token_env", metavar="VAR", help="require 'Authorization: Bearer $VAR' (probes stay open)"
    )
    parser.add_argument("--log_payload", action="store_true", help="put the request texts in the access log")
    # KServe's Hugging Face runtime flags, accepted so the InferenceService's args run here unchanged.
    parser.add_argument("--task", choices=("sequence_classification",), default="sequence_classification")
    parser.add_argument("--backend", choices=("huggingface",), default="huggingface")
    return parser


def token_from_env(variable: str | None) -> str | None:
    if variable is None:
        return None
    token = os.environ.get(variable, "").strip()
    if not token:
        raise PredictorError(
            f"--auth_token_env {variable}: the environment variable {variable} is unset or empty; "
            f"export {variable}=<token> or drop --auth_token_env"
        )
    return token


def check_port(host: str, port: int) -> None:
    """Fail before the model loads, not after, when host:port cannot be bound."""
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PredictorError(
                f"cannot listen on {host}:{port} ({error.strerror or error}); pass another --http_port "
                "(0: any free one) or --host"
            ) from None


def serve(
    uri: str, name: str, port: int, host: str = "127.0.0.1", options: PredictorOptions | None = None
) -> None:
    """Fetch and load the model at ``uri``, then serve it as ``name`` on host:port until SIGINT/SIGTERM."""
    check_port(host, port)
    from kserve.logging import configure_logging, logger

    from serving._server import LocalModelServer

    if not logger.handlers:  # as ModelServer does, but before the download so that it is logged too
        configure_logging()
    options = options or PredictorOptions()
    model = TextClassifier(name, uri, options)
    model.load()
    LocalModelServer(port, host=host, token=options.auth_token).start([model])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.workers != 1:
            raise PredictorError("--workers must be 1: the micro-batcher shares one model in one process")
        options = PredictorOptions(
            max_batch_size=args.max_batch_size,
            max_batch_wait_ms=args.max_batch_wait_ms,
            max_instances=args.max_instances,
            max_model_len=args.max_model_len,
            device=args.device,
            return_probabilities=args.return_probabilities,
            auth_token=token_from_env(args.auth_token_env),
            log_payload=args.log_payload,
        )
        serve(args.model_dir, args.model_name, args.http_port, host=args.host, options=options)
    except PredictorError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    # OpenMP workers that spin between parallel regions steal the CPU from the event loop and from their
    # own peer when cores are shared (measured on 2 busy cores: 3x the CPU per request, a quarter of the
    # throughput at concurrency 16). Set before torch loads; an explicit OMP_WAIT_POLICY wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    sys.exit(main())
