"""A deadline on every request a kubernetes client sends (the cluster backend's and promote-best's --deploy).

The generated kubernetes client waits forever unless each call passes ``_request_timeout``, and the
kubeflow-katib and kserve SDKs pass none: an API server that accepts the connection and never answers (a
dead load balancer, a black-holed route) would hang ``katib experiment status`` with no message. Bounding
the client's REST layer covers every call, the SDKs' included; a call that passes its own timeout keeps it.
"""

from __future__ import annotations

from typing import Any

REQUEST_TIMEOUT = (
    30.0  # seconds to connect, then to answer, per try; kubectl's --request-timeout, with a default
)


def bound_requests(api_client: Any, seconds: float | None = None) -> Any:
    """Make ``seconds`` (default REQUEST_TIMEOUT) the default ``_request_timeout`` of ``api_client`` (a
    kubernetes ``ApiClient``)."""
    import urllib3

    seconds = seconds or REQUEST_TIMEOUT
    rest = api_client.rest_client
    # urllib3's default (3 retries of anything) would make a silent server cost 4 x the deadline: try a
    # request at most twice (a reset pooled connection, a blip), never on an HTTP status.
    rest.pool_manager.connection_pool_kw["retries"] = urllib3.util.Retry(
        total=3, connect=1, read=1, status=0, redirect=3
    )
    send = rest.request

    def request(*args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
        return send(*args, _request_timeout=_request_timeout or (rest._katib_suite_timeout,) * 2, **kwargs)

    rest._katib_suite_timeout = seconds
    rest.request = request  # the verbs (GET, POST, ...) call self.request: the instance's, this one
    return api_client


def positive_seconds(text: str) -> float:
    """argparse type for --request-timeout."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0; got: {text}")
    return value
