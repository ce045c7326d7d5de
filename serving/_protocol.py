"""Requests and answers of KServe's Hugging Face runtime (sequence classification), checked before the model.

v1  ``POST /v1/models/<m>:predict``  ``{"instances": ["text", ...], "parameters": {...}}``
    -> ``{"predictions": [3, 1], "labels": ["Sports", "Health"]}``
v2  ``POST /v2/models/<m>/infer``  ``{"inputs": [{"name": "input-0", "shape": [2], "datatype": "BYTES",
    "data": ["text", ...]}], "parameters": {...}}`` -> ``outputs``: ``output-0`` INT64 [N] class indices,
    ``labels`` BYTES [N] topic names, and with probabilities ``probabilities`` FP32 [N, C].

``"parameters": {"return_probabilities": true}`` turns each v1 prediction into ``{"0": p0, "1": p1, ...}``
(softmax over the classes, the shape KServe >= 0.16 answers) and adds the v2 ``probabilities`` output.
The runtime's indices stay where KServe puts them (``predictions``, ``output-0``), so KServe's clients work
unchanged; ``labels`` is ours. Every malformed request is an ``InvalidInput`` (HTTP 400) with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kserve.errors import InvalidInput

PARAMETERS = ("return_probabilities",)
V1_EXAMPLE = '{"instances": ["text", ...]}'


@dataclass(frozen=True)
class Query:
    texts: list[str]
    protocol: str  # "v1" | "v2"
    return_probabilities: bool | None = None  # None: the server's default (--return_probabilities)
    request_id: str | None = None  # v2 echoes it


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def check_texts(values: Any, where: str, max_instances: int) -> list[str]:
    if not isinstance(values, list):
        raise InvalidInput(f"{where} must be a list of strings, but got {_type_name(values)}")
    if not values:
        raise InvalidInput(f"{where} is empty; send at least one text")
    if len(values) > max_instances:
        raise InvalidInput(
            f"{where} holds {len(values)} texts, more than this server takes per request ({max_instances}, "
            "--max_instances); split the request"
        )
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise InvalidInput(
                f"{where}[{i}] must be a string, but got {_type_name(value)}; "
                "send every text as a JSON string"
            )
        if not value.strip():
            raise InvalidInput(f"{where}[{i}] is an empty string; send a text to classify")
    return values


def check_parameters(parameters: Any) -> bool | None:
    """The request's options; returns return_probabilities (None: not given). Unknown names are refused."""
    if parameters is None:
        return None
    if not isinstance(parameters, dict):
        raise InvalidInput(f'"parameters" must be an object, but got {_type_name(parameters)}')
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        raise InvalidInput(f"unknown parameter(s) {unknown}; this model takes {list(PARAMETERS)}")
    value = parameters.get("return_probabilities")
    if value is not None and not isinstance(value, bool):
        raise InvalidInput(f'"return_probabilities" must be true or false, but got {value!r}')
    return value


def parse_v1(body: Any, max_instances: int) -> Query:
    if not isinstance(body, dict):
        raise InvalidInput(f"the request body must be a JSON object like {V1_EXAMPLE}")
    # KServe's v1 data plane accepts "inputs" as another name for "instances".
    key = "instances" if "instances" in body else "inputs" if "inputs" in body else None
    if key is None:
        raise InvalidInput(f'the request has no "instances"; send {V1_EXAMPLE}')
    unknown = sorted(set(body) - {key, "parameters"})
    if unknown:
        raise InvalidInput(f'unknown field(s) {unknown}; a v1 request has "instances" and "parameters"')
    texts = check_texts(body[key], key, max_instances)
    return Query(texts, "v1", check_parameters(body.get("parameters")))


def parse_v2(request: Any, max_instances: int) -> Query:
    """``request``: kserve's ``InferRequest``."""
    inputs = request.inputs or []
    if len(inputs) != 1:
        raise InvalidInput(f"the request must have exactly one input (BYTES texts), but has {len(inputs)}")
    tensor = inputs[0]
    if tensor.datatype != "BYTES":
        raise InvalidInput(
            f'the input "{tensor.name}" must have datatype BYTES (texts), not {tensor.datatype}'
        )
    data = tensor.data
    if data is None and getattr(tensor, "_raw_data", None) is not None:
        # the binary tensor extension: length-prefixed bytes after the JSON header
        data = tensor.as_numpy().reshape(-1).tolist()
    if isinstance(data, list):
        data = [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v for v in data]
    texts = check_texts(data, f'input "{tensor.name}" data', max_instances)
    count = 1
    for dim in tensor.shape or []:
        count *= dim
    if count != len(texts) or (tensor.shape and tensor.shape[0] != len(texts)):
        raise InvalidInput(
            f'the input "{tensor.name}" has shape {tensor.shape} but {len(texts)} texts; use shape [{len(texts)}]'
        )
    return Query(texts, "v2", check_parameters(request.parameters), request.id)


def v1_answer(query: Query, indices: list[int], probabilities: list[list[float]], labels: list[str]) -> dict:
    if query.return_probabilities:
        predictions: list[Any] = [{str(k): p for k, p in enumerate(row)} for row in probabilities]
    else:
        predictions = list(indices)
    return {"predictions": predictions, "labels": labels}


def v2_answer(
    query: Query, model_name: str, indices: list[int], probabilities: list[list[float]], labels: list[str]
) -> Any:
    from kserve.protocol.infer_type import InferOutput, InferResponse

    n = len(indices)
    outputs = [
        InferOutput(name="output-0", shape=[n], datatype="INT64", data=list(indices)),
        InferOutput(name="labels", shape=[n], datatype="BYTES", data=list(labels)),
    ]
    if query.return_probabilities:
        width = len(probabilities[0]) if probabilities else 0
        flat = [p for row in probabilities for p in row]
        outputs.append(InferOutput(name="probabilities", shape=[n, width], datatype="FP32", data=flat))
    return InferResponse(response_id=query.request_id, model_name=model_name, infer_outputs=outputs)
