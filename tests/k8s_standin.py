"""A stand-in Kubernetes API server on 127.0.0.1 for tests of the cluster backend and of KServe deploys.

There is no Kubernetes on the build machine, so the SDK clients (``KatibClient``, ``KServeClient``,
``kubernetes.client``) are pointed at this small in-memory server instead. It speaks enough of the
API-server protocol for those clients to work unmodified; it is not a controller: tests (or hooks they
register) play Katib / KServe by writing ``status`` and creating Trial / Pod objects themselves.

Use it as a pytest fixture::

    from tests.k8s_standin import k8s_standin, kubeconfig  # noqa: F401  (re-export the fixtures)

    def test_create(k8s_standin, kubeconfig):
        k8s_standin.install_crds("katib", "training")       # CRDs the pre-flight checks look for
        k8s_standin.add_namespace("team", labels={"katib.kubeflow.org/metrics-collector-injection": "enabled"})
        client = KatibClient(config_file=str(kubeconfig), namespace="team")
        ...
        assert k8s_standin.calls("POST", "/experiments")     # the request log

API (all methods are thread-safe):

- Paths served, for any group/version/plural (no schema checks; objects are stored as sent):
  ``/api/v1/[namespaces/NS/]PLURAL[/NAME[/status]]`` and
  ``/apis/GROUP/VERSION/[namespaces/NS/]PLURAL[/NAME[/status]]``.
  Verbs: GET (one object / a list, with ``labelSelector`` = ``k=v,k!=v,k`` and
  ``fieldSelector`` = ``metadata.name=`` / ``metadata.namespace=``), POST (409 AlreadyExists;
  ``generateName`` honoured), PUT (409 Conflict on a stale ``resourceVersion``), PATCH
  (``application/json-patch+json`` is RFC 6902; ``merge-patch+json`` and ``strategic-merge-patch+json``
  are both applied as RFC 7386 merge patches), DELETE (404 NotFound when missing). Writes to an object
  keep its ``status``; writes to ``.../status`` change only ``status`` (CRDs with a status subresource).
  ``?watch=true`` streams ADDED events for the matching objects, then every later change, until
  ``timeoutSeconds`` (capped by ``watch_timeout``, default 2 s) passes.
- ``/version``, ``/api``, ``/apis`` and ``/apis/GROUP/VERSION`` discovery, derived from the stored
  ``customresourcedefinitions`` (``/apis/apiextensions.k8s.io/v1/customresourcedefinitions``).
- Pod logs: ``GET /api/v1/namespaces/NS/pods/POD/log[?container=C]`` returns what ``set_pod_log`` stored
  (404 if the pod does not exist).
- ``install_crds("katib", "training", "kserve")`` / ``install_crd(group, version, plural, kind)``;
  ``add_namespace(name, labels)``; ``add(api_version, plural, obj, namespace=None)`` (stores, no request
  logged); ``get(api_version, plural, name, namespace=None)`` (a copy, or None); ``items(...)``;
  ``update(api_version, plural, name, namespace, fn)`` (fn mutates the stored object in place).
- ``on(method, plural, fn)``: after a successful request, ``fn(standin, obj)`` runs with the stored object
  (e.g. mark an InferenceService Ready on POST, as the KServe controller would).
- ``fail(status, method="*", path=REGEX, times=None, message=None)``: scripted errors returned as
  Kubernetes ``Status`` objects (403 Forbidden, 500 ...) for requests whose path matches ``re.search``.
- ``requests`` (list of ``Request``: method, path, query, content_type, body, authorization) and
  ``calls(method, path_contains)`` to assert on what a client sent; ``clear_requests()``.
- ``write_kubeconfig(path, namespace="default", context="standin")`` writes a kubeconfig whose current
  context points here (bearer token ``standin-token``); ``unreachable_kubeconfig(path)`` points at a port
  nothing listens on.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

TOKEN = "standin-token"

# Kinds of the core resources the clients use (CRD kinds come from the stored CRDs).
CORE_KINDS = {
    "pods": "Pod",
    "namespaces": "Namespace",
    "serviceaccounts": "ServiceAccount",
    "secrets": "Secret",
    "services": "Service",
    "configmaps": "ConfigMap",
    "events": "Event",
    "nodes": "Node",
    "persistentvolumeclaims": "PersistentVolumeClaim",
}

# (group, version, plural, kind) of the CRDs each platform component installs.
CRD_SETS = {
    "katib": [
        ("kubeflow.org", "v1beta1", "experiments", "Experiment"),
        ("kubeflow.org", "v1beta1", "trials", "Trial"),
        ("kubeflow.org", "v1beta1", "suggestions", "Suggestion"),
    ],
    "training": [("kubeflow.org", "v1", "pytorchjobs", "PyTorchJob")],
    "kserve": [
        ("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService"),
        ("serving.kserve.io", "v1alpha1", "servingruntimes", "ServingRuntime"),
        ("serving.kserve.io", "v1alpha1", "clusterservingruntimes", "ClusterServingRuntime"),
    ],
}
CRD_API = "apiextensions.k8s.io/v1"


@dataclass
class Request:
    """One request as the server saw it (the body parsed as JSON when it is JSON)."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    body: Any
    authorization: bool  # whether a bearer token came with it (its value is never kept)


@dataclass
class _Fault:
    status: int
    method: str
    path: re.Pattern[str]
    times: int | None
    message: str


@dataclass
class _Route:
    api_version: str  # "v1" for the core group, else "group/version"
    namespace: str  # "" when cluster-scoped or listed across namespaces
    plural: str
    name: str | None = None
    sub: str | None = None
    namespaced_path: bool = False


@dataclass
class _Store:
    objects: dict[tuple[str, str, str, str], dict] = field(default_factory=dict)  # (av, plural, ns, name)
    logs: dict[tuple[str, str, str | None], str] = field(default_factory=dict)
    events: list[tuple[int, str, tuple[str, str], dict]] = field(default_factory=list)
    version: int = 1


class StatusError(Exception):
    """A Kubernetes ``Status`` failure the handler sends back."""

    REASONS: ClassVar[dict[int, str]] = {
        400: "BadRequest",
        403: "Forbidden",
        404: "NotFound",
        405: "MethodNotAllowed",
        409: "AlreadyExists",
        415: "UnsupportedMediaType",
        422: "Invalid",
        500: "InternalError",
    }

    def __init__(self, code: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message = code, message
        self.reason = reason or self.REASONS.get(code, "Unknown")

    def body(self) -> dict:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


def parse_route(path: str) -> _Route | None:
    """Split a resource path into api version, namespace, plural, name and subresource."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        api_version, rest = "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        api_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    if not rest:
        return None
    if rest[0] == "namespaces" and len(rest) >= 3:
        ns, rest, namespaced = rest[1], rest[2:], True
    else:
        ns, namespaced = "", False
    return _Route(api_version, ns, rest[0], *[*rest[1:3], None, None][:2], namespaced_path=namespaced)


def label_matches(labels: dict[str, str], selector: str) -> bool:
    """Equality-based label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k`` and ``!k``."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def field_matches(obj: dict, selector: str) -> bool:
    meta = obj.get("metadata", {})
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, _, value = term.partition("=")
        if meta.get(key.removeprefix("metadata."), "") != value.lstrip("="):
            return False
    return True


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise StatusError(422, f"json patch path must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, tokens: list[str]) -> tuple[Any, str | int]:
    for token in tokens[:-1]:
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    last = tokens[-1]
    return doc, (len(doc) if last == "-" else int(last)) if isinstance(doc, list) else last


def json_patch(doc: Any, operations: list[dict]) -> Any:
    """RFC 6902 add / remove / replace / move / copy / test; a failed op is a 422 as on a real server."""
    doc = copy.deepcopy(doc)
    for op in operations:
        try:
            kind, tokens = op["op"], _pointer(op["path"])
            if kind in ("move", "copy"):
                parent, key = _resolve(doc, _pointer(op["from"]))
                value = copy.deepcopy(parent[key])
                if kind == "move":
                    del parent[key]
                kind, op = "add", {**op, "value": value}
            parent, key = _resolve(doc, tokens)
            if kind == "add":
                parent.insert(key, op["value"]) if isinstance(parent, list) else parent.__setitem__(
                    key, op["value"]
                )
            elif kind == "remove":
                del parent[key]
            elif kind == "replace":
                parent[key]
                parent[key] = op["value"]
            elif kind == "test":
                if parent[key] != op["value"]:
                    raise StatusError(422, f"json patch test failed at {op['path']}")
            else:
                raise StatusError(422, f"unknown json patch op: {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise StatusError(422, f"json patch {op!r} cannot be applied: {exc!r}") from exc
    return doc


class K8sStandin:
    """The in-memory API server; ``start()`` binds 127.0.0.1 on a free port, ``stop()`` shuts it down."""

    def __init__(self, watch_timeout: float = 2.0) -> None:
        self.watch_timeout = watch_timeout
        self.requests: list[Request] = []
        self._store = _Store()
        self._faults: list[_Fault] = []
        self._hooks: list[tuple[str, str, Callable[[K8sStandin, dict], None]]] = []
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._stopping = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> K8sStandin:
        handler = type("Handler", (_Handler,), {"standin": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="k8s-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- test-side setup and inspection -----------------------------------------------------------
    def install_crd(
        self, group: str, version: str, plural: str, kind: str, scope: str = "Namespaced"
    ) -> None:
        name = f"{plural}.{group}"
        crd = {
            "apiVersion": CRD_API,
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {
                "group": group,
                "scope": scope,
                "names": {"plural": plural, "kind": kind, "singular": kind.lower()},
                "versions": [
                    {"name": version, "served": True, "storage": True, "subresources": {"status": {}}}
                ],
            },
        }
        existing = self.get(CRD_API, "customresourcedefinitions", name)
        if existing and version not in [v["name"] for v in existing["spec"]["versions"]]:
            crd["spec"]["versions"] = existing["spec"]["versions"] + crd["spec"]["versions"]
        self.add(CRD_API, "customresourcedefinitions", crd)

    def install_crds(self, *components: str) -> None:
        """Install the CRDs of ``katib``, ``training`` and/or ``kserve``."""
        for component in components:
            for group, version, plural, kind in CRD_SETS[component]:
                scope = "Cluster" if plural.startswith("cluster") else "Namespaced"
                self.install_crd(group, version, plural, kind, scope)

    def add_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        self.add(
            "v1",
            "namespaces",
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": dict(labels or {})},
            },
        )

    def add(self, api_version: str, plural: str, obj: dict, namespace: str | None = None) -> dict:
        """Store (or overwrite) an object as a controller would; no request is logged."""
        with self._changed:
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            ns = namespace if namespace is not None else meta.get("namespace", "")
            if ns:
                meta["namespace"] = ns
            kind = "MODIFIED" if (api_version, plural, ns, meta["name"]) in self._store.objects else "ADDED"
            return self._save(api_version, plural, ns, obj, kind)

    def get(self, api_version: str, plural: str, name: str, namespace: str = "") -> dict | None:
        with self._lock:
            obj = self._store.objects.get((api_version, plural, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def items(self, api_version: str, plural: str, namespace: str | None = None) -> list[dict]:
        with self._lock:
            return [
                copy.deepcopy(o)
                for (av, pl, ns, _), o in sorted(self._store.objects.items())
                if av == api_version and pl == plural and (namespace is None or ns == namespace)
            ]

    def update(
        self, api_version: str, plural: str, name: str, namespace: str, fn: Callable[[dict], None]
    ) -> dict:
        """Mutate a stored object in place (e.g. set ``status``), as a controller would."""
        with self._changed:
            obj = copy.deepcopy(self._store.objects[(api_version, plural, namespace, name)])
            fn(obj)
            return self._save(api_version, plural, namespace, obj, "MODIFIED")

    def set_pod_log(self, namespace: str, pod: str, text: str, container: str | None = None) -> None:
        with self._lock:
            self._store.logs[(namespace, pod, container)] = text

    def on(self, method: str, plural: str, fn: Callable[[K8sStandin, dict], None]) -> None:
        with self._lock:
            self._hooks.append((method.upper(), plural, fn))

    def fail(
        self,
        status: int,
        method: str = "*",
        path: str = ".*",
        times: int | None = None,
        message: str | None = None,
    ) -> None:
        """Answer matching requests with ``status`` (``times`` of them, or all) instead of serving them."""
        with self._lock:
            self._faults.append(
                _Fault(
                    status,
                    method.upper(),
                    re.compile(path),
                    times,
                    message or f"stand-in: scripted {status} for {method} {path}",
                )
            )

    def calls(self, method: str | None = None, path_contains: str = "") -> list[Request]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method.upper()) and path_contains in r.path
            ]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def write_kubeconfig(self, path: Path, namespace: str = "default", context: str = "standin") -> Path:
        return _write_kubeconfig(Path(path), self.url, namespace, context)

    # -- server side ------------------------------------------------------------------------------
    def _save(self, api_version: str, plural: str, ns: str, obj: dict, event: str) -> dict:
        meta = obj["metadata"]
        self._store.version += 1
        meta["resourceVersion"] = str(self._store.version)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        self._store.objects[(api_version, plural, ns, meta["name"])] = obj
        self._store.events.append((self._store.version, event, (api_version, plural), copy.deepcopy(obj)))
        self._changed.notify_all()
        return copy.deepcopy(obj)

    def _kind(self, api_version: str, plural: str) -> str:
        if api_version == "v1":
            return CORE_KINDS.get(plural, plural.capitalize())
        for crd in self.items(CRD_API, "customresourcedefinitions"):
            if f"{crd['spec']['group']}/" in api_version and crd["spec"]["names"]["plural"] == plural:
                return crd["spec"]["names"]["kind"]
        return "CustomResourceDefinition" if plural == "customresourcedefinitions" else plural.capitalize()

    def _fault_for(self, method: str, path: str) -> StatusError | None:
        with self._lock:
            for fault in self._faults:
                if fault.method in ("*", method) and fault.path.search(path) and fault.times != 0:
                    if fault.times is not None:
                        fault.times -= 1
                    return StatusError(fault.status, fault.message)
        return None

    def _run_hooks(self, method: str, route: _Route, obj: dict) -> None:
        for hook_method, plural, fn in list(self._hooks):
            if hook_method == method and plural == route.plural:
                fn(self, obj)

    def handle(self, method: str, route: _Route, query: dict[str, str], body: Any, content_type: str) -> Any:
        """Serve one resource request; returns the response JSON or raises ``StatusError``."""
        with self._changed:
            key = (route.api_version, route.plural, route.namespace, route.name or "")
            resource = (
                f"{route.plural}.{route.api_version.split('/')[0]}"
                if "/" in route.api_version
                else route.plural
            )
            stored = self._store.objects.get(key)
            if method == "GET" and route.name is None:
                return self._list(route, query)
            if method == "POST":
                if route.name is not None:
                    raise StatusError(405, f"POST to {route.plural}/{route.name} is not allowed")
                return self._create(route, body, resource)
            if stored is None:
                raise StatusError(404, f'{resource} "{route.name}" not found')
            if method == "GET":
                return copy.deepcopy(stored)
            if method == "DELETE":
                del self._store.objects[key]
                self._store.version += 1
                self._store.events.append((self._store.version, "DELETED", key[:2], copy.deepcopy(stored)))
                self._changed.notify_all()
                return stored
            if method == "PUT":
                new = copy.deepcopy(body)
                sent_rv = new.get("metadata", {}).get("resourceVersion")
                if sent_rv and sent_rv != stored["metadata"]["resourceVersion"]:
                    raise StatusError(
                        409,
                        f'Operation cannot be fulfilled on {resource} "{route.name}": '
                        "the object has been modified",
                        reason="Conflict",
                    )
            elif method == "PATCH":
                if "json-patch" in content_type:
                    new = json_patch(stored, body)
                elif "merge-patch" in content_type:
                    new = merge_patch(stored, body)
                else:
                    raise StatusError(415, f"the stand-in does not apply {content_type!r} patches")
            else:
                raise StatusError(405, f"method {method} is not supported")
            return self._write(route, stored, new)

    def _create(self, route: _Route, body: Any, resource: str) -> dict:
        if not isinstance(body, dict):
            raise StatusError(400, "the request body must be a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise StatusError(
                422, f"{resource}: metadata.name: Required value: name or generateName is required"
            )
        if route.namespace:
            if (meta.get("namespace") or route.namespace) != route.namespace:
                raise StatusError(
                    400,
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            meta["namespace"] = route.namespace
        if (route.api_version, route.plural, route.namespace, meta["name"]) in self._store.objects:
            raise StatusError(409, f'{resource} "{meta["name"]}" already exists')
        obj.setdefault("apiVersion", route.api_version)
        obj.setdefault("kind", self._kind(route.api_version, route.plural))
        return self._save(route.api_version, route.plural, route.namespace, obj, "ADDED")

    def _write(self, route: _Route, stored: dict, new: dict) -> dict:
        if route.sub == "status":
            result = copy.deepcopy(stored)
            result["status"] = new.get("status")
        else:
            result = new
            result.setdefault("metadata", {})["name"] = route.name
            for kept in ("uid", "creationTimestamp", "namespace"):
                if kept in stored["metadata"]:
                    result["metadata"][kept] = stored["metadata"][kept]
            if "status" in stored:
                result["status"] = stored["status"]
            else:
                result.pop("status", None)
        return self._save(route.api_version, route.plural, route.namespace, result, "MODIFIED")

    def _matching(self, route: _Route, query: dict[str, str]) -> list[dict]:
        found = []
        for (av, plural, ns, _), obj in sorted(self._store.objects.items()):
            if av != route.api_version or plural != route.plural:
                continue
            if route.namespace and ns != route.namespace:
                continue
            if not label_matches(obj["metadata"].get("labels") or {}, query.get("labelSelector", "")):
                continue
            if field_matches(obj, query.get("fieldSelector", "")):
                found.append(copy.deepcopy(obj))
        return found

    def _list(self, route: _Route, query: dict[str, str]) -> dict:
        return {
            "apiVersion": route.api_version,
            "kind": self._kind(route.api_version, route.plural) + "List",
            "metadata": {"resourceVersion": str(self._store.version)},
            "items": self._matching(route, query),
        }

    def watch(self, route: _Route, query: dict[str, str]) -> Iterator[dict]:
        """ADDED for what matches now, then later changes, until the (capped) timeout passes."""
        timeout = min(float(query.get("timeoutSeconds", self.watch_timeout)), self.watch_timeout)
        deadline = time.monotonic() + timeout
        with self._changed:
            seen = self._store.version
            initial = self._matching(route, query)
        for obj in initial:
            yield {"type": "ADDED", "object": obj}
        while True:
            with self._changed:
                fresh = [
                    e for e in self._store.events if e[0] > seen and e[2] == (route.api_version, route.plural)
                ]
                while not fresh and not self._stopping and time.monotonic() < deadline:
                    self._changed.wait(timeout=max(0.0, deadline - time.monotonic()))
                    fresh = [
                        e
                        for e in self._store.events
                        if e[0] > seen and e[2] == (route.api_version, route.plural)
                    ]
                if not fresh:
                    return
                seen = fresh[-1][0]
            for _, event, _, obj in fresh:
                ns_ok = not route.namespace or obj["metadata"].get("namespace") == route.namespace
                labels_ok = label_matches(obj["metadata"].get("labels") or {}, query.get("labelSelector", ""))
                if ns_ok and labels_ok and field_matches(obj, query.get("fieldSelector", "")):
                    yield {"type": event, "object": obj}

    def discovery(self, path: str) -> dict | None:
        crds = [
            c["spec"] | {"_name": c["metadata"]["name"]}
            for c in self.items(CRD_API, "customresourcedefinitions")
        ]
        parts = [p for p in path.split("/") if p]
        if parts == ["version"]:
            # Every field a real server sends: kubernetes>=37's VersionInfo model requires them all.
            return {
                "major": "1",
                "minor": "31",
                "gitVersion": "v1.31.0-standin",
                "gitCommit": "standin",
                "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.23",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        if parts == ["api"]:
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if parts == ["apis"]:
            groups: dict[str, list[str]] = {"apiextensions.k8s.io": ["v1"]}
            for spec in crds:
                groups.setdefault(spec["group"], [])
                groups[spec["group"]] += [
                    v["name"] for v in spec["versions"] if v["name"] not in groups[spec["group"]]
                ]
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": g,
                        "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                        "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
                    }
                    for g, vs in groups.items()
                ],
            }
        if len(parts) == 3 and parts[0] == "apis":
            group, version = parts[1], parts[2]
            resources = [
                {
                    "name": s["names"]["plural"],
                    "singularName": s["names"]["singular"],
                    "namespaced": s["scope"] == "Namespaced",
                    "kind": s["names"]["kind"],
                    "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                }
                for s in crds
                if s["group"] == group and version in [v["name"] for v in s["versions"]]
            ]
            if group == "apiextensions.k8s.io":
                resources.append(
                    {
                        "name": "customresourcedefinitions",
                        "namespaced": False,
                        "kind": "CustomResourceDefinition",
                        "verbs": ["get", "list"],
                    }
                )
            if not resources:
                raise StatusError(
                    404, f"the server could not find the requested resource ({group}/{version})"
                )
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/{version}",
                "resources": resources,
            }
        return None

    def pod_log(self, route: _Route, query: dict[str, str]) -> str:
        with self._lock:
            if ("v1", "pods", route.namespace, route.name) not in self._store.objects:
                raise StatusError(404, f'pods "{route.name}" not found')
            logs = self._store.logs
            container = query.get("container")
            text = logs.get(
                (route.namespace, route.name, container), logs.get((route.namespace, route.name, None))
            )
            return text or ""


class _Handler(BaseHTTPRequestHandler):
    standin: K8sStandin

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        content_type = self.headers.get("Content-Type") or ""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        standin = self.standin
        with standin._lock:
            standin.requests.append(
                Request(
                    method,
                    split.path,
                    query,
                    content_type or None,
                    body,
                    authorization=bool(self.headers.get("Authorization")),
                )
            )
        try:
            fault = standin._fault_for(method, split.path)
            if fault is not None:
                raise fault
            if method == "GET" and (found := standin.discovery(split.path)) is not None:
                return self._json(200, found)
            route = parse_route(split.path)
            if route is None:
                raise StatusError(404, f"the server could not find the requested resource ({split.path})")
            if route.plural == "pods" and route.sub == "log" and method == "GET":
                return self._text(standin.pod_log(route, query))
            if method == "GET" and route.name is None and query.get("watch") in ("true", "1"):
                return self._stream(standin.watch(route, query))
            result = standin.handle(method, route, query, body, content_type)
            if method in ("POST", "PUT", "PATCH", "DELETE"):
                standin._run_hooks(method, route, result)
            self._json(201 if method == "POST" else 200, result)
        except StatusError as exc:
            self._json(exc.code, exc.body())

    def _json(self, code: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _text(self, text: str) -> None:
        data = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: Iterator[dict]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for event in events:
            self.wfile.write(json.dumps(event).encode() + b"\n")
            self.wfile.flush()


def _write_kubeconfig(path: Path, server: str, namespace: str, context: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": context, "user": {"token": TOKEN}}],
        "contexts": [
            {"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML: kubeconfig loaders read it
    return path


def free_port() -> int:
    """A port nothing listens on (bound then released) for 'unreachable API server' tests."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unreachable_kubeconfig(path: Path, namespace: str = "default") -> Path:
    return _write_kubeconfig(Path(path), f"http://127.0.0.1:{free_port()}", namespace, "unreachable")


@contextlib.contextmanager
def silent_api_server(path: Path, namespace: str = "default") -> Iterator[Path]:
    """A kubeconfig whose server (127.0.0.1) accepts connections and never answers: a black-holed route."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)  # the kernel completes the handshakes; nobody ever reads or replies
    try:
        yield _write_kubeconfig(
            Path(path), f"http://127.0.0.1:{listener.getsockname()[1]}", namespace, "silent"
        )
    finally:
        listener.close()


@pytest.fixture
def k8s_standin() -> Iterator[K8sStandin]:
    """A started stand-in API server, stopped after the test."""
    server = K8sStandin().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kubeconfig(k8s_standin: K8sStandin, tmp_path: Path) -> Path:
    """A kubeconfig file whose current context (``standin``, namespace ``default``) is the stand-in."""
    return k8s_standin.write_kubeconfig(tmp_path / "kubeconfig")
