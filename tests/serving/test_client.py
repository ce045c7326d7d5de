"""serving.client against the real local predictor, and against an index-only answer as KServe's Hugging
Face runtime gives it (a stand-in on 127.0.0.1), where the topic names come from the model card."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from serving.client import parse_v1, parse_v2, predict
from serving.predict_errors import PredictionError
from tests.serving.predictor_server import TOKEN, PredictorProcess
from trainer.labels import ID2LABEL

CARD = {"model": {"id2label": {str(k): v for k, v in ID2LABEL.items()}}}
TEXTS = ["Who won the cup final?", "Is this mortgage rate good?"]


class RuntimeStandin(BaseHTTPRequestHandler):
    """Answers like KServe 0.15's Hugging Face runtime: class indices, no names."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.startswith("/v1/"):
            answer = {"predictions": [len(t) % 10 for t in body["instances"]]}
        else:
            data = body["inputs"][0]["data"]
            answer = {"model_name": "m", "id": "1", "outputs": [
                {"name": "output-0", "shape": [len(data)], "datatype": "INT64", "data": [len(t) % 10 for t in data]}]}  # fmt: skip
        raw = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def runtime() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), RuntimeStandin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_indices_only_answers_are_named_from_the_model_card(runtime: str, protocol: str):
    rows = predict(runtime, "m", TEXTS, card=CARD, protocol=protocol)
    assert [r["index"] for r in rows] == [len(t) % 10 for t in TEXTS]
    assert [r["label"] for r in rows] == [ID2LABEL[len(t) % 10] for t in TEXTS]
    assert predict(runtime, "m", TEXTS, protocol=protocol)[0]["label"] is None  # no card, no names


def test_answer_parsers():
    assert parse_v1({"predictions": [3, 1]}) == ([3, 1], None, None)
    indices, _, probabilities = parse_v1({"predictions": [{"0": 0.2, "1": 0.7, "2": 0.1}]})
    assert indices == [1] and probabilities == [[0.2, 0.7, 0.1]]
    answer = {"outputs": [{"name": "output-0", "data": [2]}, {"name": "labels", "data": ["Sports"]},
                          {"name": "probabilities", "shape": [1, 3], "data": [0.1, 0.2, 0.7]}]}  # fmt: skip
    assert parse_v2(answer) == ([2], ["Sports"], [[0.1, 0.2, 0.7]])
    with pytest.raises(PredictionError, match="no predictions"):
        parse_v1({"error": "x"})


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_against_the_local_predictor(predictor: PredictorProcess, protocol: str):
    rows = predict(predictor.url, "tiny", TEXTS, protocol=protocol, return_probabilities=True, card=CARD)
    assert [r["text"] for r in rows] == TEXTS
    for row in rows:
        assert row["label"] == ID2LABEL[row["index"]]
        assert set(row["probabilities"]) == set(ID2LABEL.values())
        assert max(row["probabilities"], key=row["probabilities"].get) == row["label"]
    assert predict(predictor.url, "tiny", "just one text")[0]["text"] == "just one text"


@pytest.mark.slow
def test_server_refusals_become_clear_errors(predictor: PredictorProcess):
    with pytest.raises(PredictionError, match=r"answered 400: instances\[0\] is an empty string") as info:
        predict(predictor.url, "tiny", [""])
    assert info.value.status == 400
    with pytest.raises(PredictionError, match=r"answered 404.*check the model name 'nope'"):
        predict(predictor.url, "nope", TEXTS)


@pytest.mark.slow
def test_token(secured_predictor: PredictorProcess):
    with pytest.raises(PredictionError, match=r"answered 401.*pass token=") as info:
        predict(secured_predictor.url, "tiny", TEXTS)
    assert info.value.status == 401
    assert len(predict(secured_predictor.url, "tiny", TEXTS, token=TOKEN)) == 2


def test_unreachable_server():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(PredictionError, match=f"cannot reach http://127.0.0.1:{port}.*start the server"):
        predict(f"http://127.0.0.1:{port}", "m", TEXTS, timeout=5)


def test_unknown_protocol():
    with pytest.raises(PredictionError, match=r"protocol must be one of \['v1', 'v2'\]; got: grpc"):
        predict("http://127.0.0.1:1", "m", TEXTS, protocol="grpc")
