"""Where this directory's cluster experiments live: ``.katib/cluster-experiments.json`` maps an experiment's
name to the namespace and kube context it was submitted to, so ``katib experiment status NAME`` finds it
without ``--backend cluster --namespace NS`` (kubectl has no such memory; Katib's state stays on the cluster,
this file only says where to look). Written on submit, dropped on delete; never holds credentials.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

RECORD = Path(".katib") / "cluster-experiments.json"
logger = logging.getLogger(__name__)


def _read(workdir: Path) -> dict[str, Any]:
    try:
        data = json.loads((workdir / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no record (or a damaged one): flags and the kube context decide, as with kubectl
    return data if isinstance(data, dict) else {}


def _write(workdir: Path, data: dict[str, Any]) -> None:
    path = workdir / RECORD
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".cluster-experiments.")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except OSError as error:
        # Only a convenience: the experiment is on the cluster either way; --namespace still finds it.
        logger.warning(
            "could not update %s (%s); pass --backend cluster --namespace NS next time", path, error
        )


def recall(workdir: Path | None, name: str) -> dict[str, Any] | None:
    """``{"namespace": ..., "context": ..., "kubeconfig": ...}`` of a submitted experiment, or None."""
    if workdir is None:
        return None
    entry = _read(Path(workdir)).get(name)
    return entry if isinstance(entry, dict) and isinstance(entry.get("namespace"), str) else None


def remember(
    workdir: Path | None, name: str, namespace: str, context: str | None, kubeconfig: str | None
) -> None:
    if workdir is None:
        return
    data = _read(Path(workdir))
    data[name] = {"namespace": namespace, "context": context, "kubeconfig": kubeconfig}
    _write(Path(workdir), data)


def forget(workdir: Path | None, name: str) -> None:
    if workdir is None:
        return
    data = _read(Path(workdir))
    if data.pop(name, None) is not None:
        _write(Path(workdir), data)
