"""kserve's ModelServer, bound to the address the user chose.

kserve 0.15.2's RESTServer hard-codes ``0.0.0.0`` and ModelServer starts a gRPC server on ``[::]:8081``;
a laptop server should listen on 127.0.0.1 unless told otherwise. This subclass keeps ModelServer's
registry, data plane, endpoints and /metrics, and changes the edges: the host, no gRPC, one worker (the
micro-batcher lives in this process), our access middleware in place of uvicorn's access log and kserve's
timing middleware (one line per request instead of three), one-line client errors instead of tracebacks,
and uvloop when installed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi.responses import JSONResponse
from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
from kserve.protocol.rest.server import RESTServer

from serving._access import AccessMiddleware

_log = logging.getLogger("kserve")


def _one_line(status: int) -> Any:
    # kserve's own handlers log a traceback for every bad request; a client's mistake is one line.
    async def handler(_: Any, error: Exception) -> JSONResponse:
        _log.warning("%d %s: %s", status, type(error).__name__, error)
        return JSONResponse(status_code=status, content={"error": str(error)})

    return handler


_CLIENT_ERRORS = {InvalidInput: 400, ModelNotFound: 404, ModelNotReady: 503}


class _RESTServer(RESTServer):
    def __init__(self, *args: Any, host: str, token: str | None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.config.host = host
        # uvicorn's access line would double ours; uvicorn.Config applied its logging settings already.
        access = logging.getLogger("uvicorn.access")
        access.handlers.clear()
        access.propagate = False
        self._token = token

    def _add_middlewares(self, app: Any) -> None:
        # In place of kserve's: its timing middleware only feeds the trace lines this server silences
        # (getrusage and two log records per request), and uvicorn's access log is replaced by ours.
        app.add_middleware(AccessMiddleware, token=self._token)

    def create_application(self) -> None:
        from kserve.model_server import app

        super().create_application()
        for error, status in _CLIENT_ERRORS.items():
            app.add_exception_handler(error, _one_line(status))


class LocalModelServer(ModelServer):
    """``LocalModelServer(http_port, host=..., token=...).start([model])``, blocking until SIGINT/SIGTERM."""

    def __init__(self, http_port: int, host: str = "127.0.0.1", token: str | None = None):
        super().__init__(http_port=http_port, workers=1, enable_grpc=False, enable_latency_logging=False)
        self.host = host
        self._token = token
        # kserve's per-request trace lines: the access log says it in one line.
        logging.getLogger("kserve.trace").setLevel(logging.WARNING)

    def start(self, models: list[Any]) -> None:
        self._register_and_check_atleast_one_model_is_ready(models)
        self._rest_server = _RESTServer(
            FASTAPI_APP_IMPORT_STRING,
            self.dataplane,
            self.model_repository_extension,
            self.http_port,
            host=self.host,
            token=self._token,
            grace_period=self.grace_period,
        )
        self.servers.append(self._rest_server.start())
        self.setup_event_loop()
        self.register_signal_handler()
        _use_uvloop()
        asyncio.run(self._serve())


def _use_uvloop() -> None:
    """uvloop (installed with kserve's uvicorn[standard]) when present: less event-loop time per request."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
