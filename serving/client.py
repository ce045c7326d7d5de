"""A small client for KServe sequence-classification endpoints: this project's predictor or KServe's runtime.

    from serving.client import predict
    predict("http://127.0.0.1:8080", "roberta-yahoo", ["Who won the cup final?"], card=card)
    # [{"text": "Who won the cup final?", "index": 5, "label": "Sports"}]

KServe's Hugging Face runtime answers class indices only; the topic names then come from the promoted
version's model card (``model-card.json``). The local predictor sends them along (``labels``). Only the
standard library: the client runs anywhere promote-best does.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from serving.model_card import labels_from_card
from serving.predict_errors import PredictionError

PROTOCOLS = ("v1", "v2")


def _request_body(texts: list[str], protocol: str, return_probabilities: bool) -> dict[str, Any]:
    parameters = {"parameters": {"return_probabilities": True}} if return_probabilities else {}
    if protocol == "v1":
        return {"instances": texts, **parameters}
    tensor = {"name": "input-0", "shape": [len(texts)], "datatype": "BYTES", "data": texts}
    return {"inputs": [tensor], **parameters}


def _argmax(scores: Sequence[float]) -> int:
    return max(range(len(scores)), key=lambda i: scores[i])


def _probabilities(row: Any) -> list[float]:
    if isinstance(row, dict):  # {"0": p0, "1": p1, ...}
        return [float(row[k]) for k in sorted(row, key=int)]
    return [float(p) for p in row]


def parse_v1(body: dict[str, Any]) -> tuple[list[int], list[str] | None, list[list[float]] | None]:
    """(indices, labels or None, probabilities or None) from a v1 answer."""
    predictions = body.get("predictions")
    if not isinstance(predictions, list):
        raise PredictionError(f"the answer has no predictions list: {str(body)[:200]}")
    if predictions and not isinstance(predictions[0], int):
        probabilities = [_probabilities(row) for row in predictions]
        return [_argmax(row) for row in probabilities], body.get("labels"), probabilities
    return [int(p) for p in predictions], body.get("labels"), None


def parse_v2(body: dict[str, Any]) -> tuple[list[int], list[str] | None, list[list[float]] | None]:
    outputs = {o.get("name"): o for o in body.get("outputs") or []}
    first = outputs.get("output-0") or next(iter(outputs.values()), None)
    if first is None:
        raise PredictionError(f"the answer has no outputs: {str(body)[:200]}")
    indices = [int(i) for i in first["data"]]
    labels = outputs["labels"]["data"] if "labels" in outputs else None
    probabilities = None
    if "probabilities" in outputs:
        flat, (_, width) = outputs["probabilities"]["data"], outputs["probabilities"]["shape"]
        probabilities = [[float(p) for p in flat[i : i + width]] for i in range(0, len(flat), width)]
    return indices, labels, probabilities


def _fix(status: int, name: str, url: str) -> str:
    if status == 401:
        return "pass token=<the server's token> (the variable named by its --auth_token_env)"
    if status == 404:
        return f"check the model name {name!r} (GET {url}/v1/models lists the served ones) and the URL"
    if status == 503:
        return "the model is still loading; retry in a moment"
    if status < 500:
        return "fix the request as the server says"
    return "see the server's log"


def _post(url: str, name: str, path: str, body: dict[str, Any], token: str | None, timeout: float) -> Any:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url + path, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raw = error.read().decode("utf-8", errors="replace")
        try:
            reason = json.loads(raw).get("error", raw)
        except (ValueError, AttributeError):
            reason = raw
        raise PredictionError(
            f"{url} answered {error.code}: {str(reason)[:300]}; {_fix(error.code, name, url)}",
            status=error.code,
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise PredictionError(
            f"cannot reach {url} ({reason}); start the server (promote-best EXPERIMENT --to DEST --serve, or "
            "python -m serving.predictor --model_dir ...) or check the URL"
        ) from None
    except ValueError as error:
        raise PredictionError(f"{url} answered something that is not JSON ({error})") from None


def predict(
    url: str,
    name: str,
    texts: str | Sequence[str],
    card: dict[str, Any] | None = None,
    protocol: str = "v1",
    token: str | None = None,
    return_probabilities: bool = False,
    timeout: float = 60.0,
) -> list[dict[str, Any]]:
    """One dict per text: ``text``, ``index``, ``label`` (None when neither the server nor the card names
    it) and, when asked for, ``probabilities`` keyed by the card's topic names (else by class index)."""
    if protocol not in PROTOCOLS:
        raise PredictionError(f"protocol must be one of {list(PROTOCOLS)}; got: {protocol}")
    texts = [texts] if isinstance(texts, str) else list(texts)
    base = url.rstrip("/")
    body = _request_body(texts, protocol, return_probabilities)
    if protocol == "v1":
        indices, labels, probabilities = parse_v1(
            _post(base, name, f"/v1/models/{name}:predict", body, token, timeout)
        )
    else:
        indices, labels, probabilities = parse_v2(
            _post(base, name, f"/v2/models/{name}/infer", body, token, timeout)
        )
    names = labels_from_card(card) if card else {}
    out = []
    for i, (text, index) in enumerate(zip(texts, indices, strict=True)):
        label = labels[i] if labels else names.get(index)
        row: dict[str, Any] = {"text": text, "index": index, "label": label}
        if probabilities is not None:
            row["probabilities"] = {names.get(k, str(k)): p for k, p in enumerate(probabilities[i])}
        out.append(row)
    return out
