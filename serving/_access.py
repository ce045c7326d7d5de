"""The predictor's HTTP edge: request ids, optional bearer-token auth, one structured access-log line.

An ASGI middleware around kserve's FastAPI app. Each request gets an id (the client's ``x-request-id`` or
a fresh one), echoed in the response and handed to kserve's model (which reads ``x-request-id``). The
model adds what only it knows (model, instances, batch size) to the request's record through
:func:`note`; when the response is sent the record becomes one JSON line on stdout:

    {"id": "...", "method": "POST", "path": "/v1/models/m:predict", "status": 200, "latency_ms": 4.2,
     "model": "m", "instances": 2, "batch": 8, "batch_requests": 4}

The token is compared in constant time and never logged; payloads are logged only with ``--log_payload``.
Probes (``/``, ``/v2/health/live``, ``/v2/health/ready``) stay open, as kubelet sends no token.
"""

from __future__ import annotations

import hmac
import json
import logging
import sys
import time
import uuid
from contextvars import ContextVar
from typing import Any

ACCESS_LOGGER = "serving.access"
OPEN_PATHS = frozenset({"/", "/v2/health/live", "/v2/health/ready"})
_record: ContextVar[dict[str, Any] | None] = ContextVar("predictor_access_record", default=None)


def note(**fields: Any) -> None:
    """Add fields to the current request's access-log record (no-op outside a request)."""
    record = _record.get()
    if record is not None:
        record.update(fields)


def access_logger() -> logging.Logger:
    logger = logging.getLogger(ACCESS_LOGGER)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


class AccessMiddleware:
    def __init__(self, app: Any, token: str | None = None, logger: logging.Logger | None = None):
        self.app = app
        self._token = token.encode() if token else None
        self._logger = logger or access_logger()

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        if self._token is None:
            return True
        scheme, _, credentials = headers.get(b"authorization", b"").partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self._token)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1") or uuid.uuid4().hex
        if b"x-request-id" not in headers:
            scope = {**scope, "headers": [*scope.get("headers", []), (b"x-request-id", request_id.encode())]}
        record: dict[str, Any] = {"id": request_id, "method": scope["method"], "path": scope["path"]}
        reset = _record.set(record)

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())],
                }
            await send(message)

        try:
            if scope["path"] in OPEN_PATHS or self._authorized(headers):
                await self.app(scope, receive, send_with_id)
            else:
                await _unauthorized(send_with_id)
        finally:
            record.setdefault("status", 500)
            record["latency_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
            _record.reset(reset)
            self._logger.info(json.dumps(record, ensure_ascii=False, default=str))


async def _unauthorized(send: Any) -> None:
    body = json.dumps(
        {"error": "missing or wrong bearer token; send the header 'Authorization: Bearer <token>'"}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="predictor"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
