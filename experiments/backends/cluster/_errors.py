"""What can go wrong between this machine and a Kubernetes API server, each as a message ending with the fix.

The kubeflow-katib SDK wraps every API failure in a bare ``RuntimeError("Failed to ...")``; the status code
(404, 409, 403 ...) or the connection error survives only on the exception it was raised from. So the
original is found on the ``__cause__`` / ``__context__`` chain, and one table turns it into a
:class:`~experiments.errors.KatibSuiteError` the CLI prints without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from experiments.errors import KatibSuiteError, NotFoundError


class ClusterError(KatibSuiteError):
    """A problem talking to the cluster (the message names the fix)."""


class KubeconfigError(ClusterError):
    """No usable kubeconfig / context."""


class ClusterUnreachableError(ClusterError):
    """The API server did not answer (connection refused, DNS, TLS, timeout)."""


class ForbiddenError(ClusterError):
    """401 / 403: the context's account may not do this."""


class ClusterNotFoundError(NotFoundError, ClusterError):
    """404: the experiment, trial or namespace does not exist there."""


class ExperimentExistsError(ClusterError):
    """409 on create: an Experiment of that name is already in the namespace."""


class PreflightError(ClusterError):
    """The cluster is not ready for this Experiment (CRDs, namespace label, ServiceAccount, Secret, image)."""


class ClusterAPIError(ClusterError):
    """Any other answer from the API server (5xx, 422 ...)."""


@dataclass(frozen=True)
class Target:
    """Where a request went, for messages: ``what`` is e.g. ``experiment kubeflow-user/quickstart``."""

    what: str
    namespace: str
    context: str | None = None
    server: str | None = None

    @property
    def where(self) -> str:
        context = f" (context {self.context})" if self.context else ""
        return f"{self.server or 'the API server'}{context}"


def _chain(error: BaseException) -> Iterator[BaseException]:
    current: BaseException | None = error
    seen = 0
    while current is not None and seen < 12:
        yield current
        seen += 1
        current = current.__cause__ or current.__context__


def status_code(error: BaseException) -> int | None:
    """The HTTP status of the kubernetes ``ApiException`` behind ``error`` (None: no answer came)."""
    from kubernetes.client.exceptions import ApiException

    for item in _chain(error):
        if isinstance(item, ApiException) and isinstance(item.status, int) and item.status:
            return item.status
    return None


def api_message(error: BaseException) -> str:
    """The API server's own ``Status.message`` (it says which object and why), else the reason phrase."""
    import json

    from kubernetes.client.exceptions import ApiException

    for item in _chain(error):
        if isinstance(item, ApiException):
            try:
                message = json.loads(item.body or "{}").get("message")
            except (ValueError, AttributeError):
                message = None
            return str(message or item.reason or "").strip()
    return ""


def _unreachable(error: BaseException) -> bool:
    import urllib3.exceptions

    return any(
        isinstance(item, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError, OSError))
        for item in _chain(error)
    )


def _timed_out(error: BaseException) -> bool:
    import urllib3.exceptions

    # urllib3's NewConnectionError (refused, no route) is a ConnectTimeoutError too, for old callers' sake.
    return any(
        isinstance(item, (urllib3.exceptions.TimeoutError, TimeoutError))
        and not isinstance(item, urllib3.exceptions.NewConnectionError)
        for item in _chain(error)
    )


def translate(error: BaseException, verb: str, target: Target) -> KatibSuiteError:
    """One clear error for ``verb`` (``create``, ``read``, ``list``, ``patch``, ``delete``) on ``target``."""
    if isinstance(error, KatibSuiteError):
        return error
    code = status_code(error)
    what, ns = target.what, target.namespace
    detail = api_message(error)
    said = f" ({detail})" if detail else ""
    if code is None and _timed_out(error):
        return ClusterUnreachableError(
            f"the Kubernetes API server at {target.where} did not answer in time ({_first_line(error)}) "
            f"while trying to {verb} {what}. Check that the cluster is up and reachable (`kubectl cluster-info`); "
            "if it is only slow, raise --request-timeout SECONDS"
        )
    if code is None and _unreachable(error):
        return ClusterUnreachableError(
            f"cannot reach the Kubernetes API server at {target.where}: {_first_line(error)}. "
            "Check that the cluster is up and the kube context is right (`kubectl cluster-info`), "
            "or pick another with --context / --kubeconfig"
        )
    if code in (401, 403):
        return ForbiddenError(
            f"cannot {verb} {what}: the API server answered {code} {'Unauthorized' if code == 401 else 'Forbidden'}"
            f"{said}. The account of {target.where} needs RBAC for Katib in namespace {ns} "
            f"(check with `kubectl auth can-i {verb if verb != 'read' else 'get'} experiments.kubeflow.org "
            f"-n {ns}`), or use another --context / --namespace"
        )
    if code == 404:
        return ClusterNotFoundError(
            f"{what} not found in namespace {ns} on {target.where}{said}; list what is there with "
            f"`katib experiment list --backend cluster --namespace {ns}`, or pass the right --namespace"
        )
    if code == 409:
        return ExperimentExistsError(
            f"{what} already exists in namespace {ns}{said}; submit under another name with --name, "
            f"continue it with `katib experiment resume NAME --backend cluster --namespace {ns} --max-trials N`, "
            f"or remove it with `katib experiment delete NAME --backend cluster --namespace {ns} --yes`"
        )
    if code is not None:
        return ClusterAPIError(
            f"cannot {verb} {what}: the API server answered {code}{said}; "
            f"see `kubectl -n {ns} get events` and the Katib controller's log"
        )
    return ClusterAPIError(f"cannot {verb} {what} on {target.where}: {_first_line(error)}")


def _first_line(error: BaseException) -> str:
    # The deepest cause says what happened ("Connection refused"); the SDK's wrapper only says "Failed".
    deepest = list(_chain(error))[-1]
    text = str(deepest).strip().splitlines()
    reason = text[0] if text else type(deepest).__name__
    if "Connection refused" in str(deepest) or isinstance(deepest, ConnectionRefusedError):
        return "connection refused"
    return reason[:200]


@contextmanager
def api_errors(verb: str, target: Target) -> Iterator[None]:
    """Turn whatever the SDK or the kubernetes client raises inside into one :class:`KatibSuiteError`."""
    try:
        yield
    except KatibSuiteError:
        raise
    except Exception as error:
        if status_code(error) is None and not _unreachable(error):
            raise  # not an API failure: a bug here, which a message would only hide
        raise translate(error, verb, target) from None
