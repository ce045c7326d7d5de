"""promote-best's core: select the trial, verify its checkpoint, copy it into a new immutable version.

    result = promote("quickstart", "s3://models/roberta-yahoo")      # -> v1, or the version it already is
    result = promote("quickstart", "./models/roberta-yahoo", trial="quickstart-abc12345")

Order matters for safety: verify (nothing written on failure) -> claim v<N> -> copy + check every file
-> model-card.json -> LATEST. A failure at any point leaves no version that looks complete, and the
claimed number is never handed out again.
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from serving.model_card import build_card
from serving.promote_errors import PromoteError
from serving.promote_select import Selection, open_experiment, select_trial
from serving.promote_verify import verify_checkpoint
from serving.store import PART_SIZE, VersionState, VersionStore


@dataclass(frozen=True)
class PromotionResult:
    version: str  # "v3"
    uri: str  # the version's location; s3:// URIs end with "/"
    created: bool  # False: the trial was already promoted (or --dry-run)
    selection: Selection
    card: dict[str, Any] | None
    dry_run: bool = False
    latest: str | None = None
    incomplete: tuple[str, ...] = field(default_factory=tuple)  # versions left by failed promotions

    @property
    def model_name(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 2)[-2]

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.selection.experiment.name,
            "trial": self.selection.trial.name,
            "selection": self.selection.reason,
            "katib_optimal_trial": self.selection.katib_optimal,
            "objective_value": self.selection.objective_value,
            "source": self.selection.checkpoint,
            "version": self.version,
            "uri": self.uri,
            "created": self.created,
            "dry_run": self.dry_run,
            "latest": self.latest,
            "incomplete_versions": list(self.incomplete),
            "model_card": self.card,
        }


def _same_content(state: VersionState, selection: Selection, trial_json_sha256: str) -> bool:
    card = state.card or {}
    return (
        card.get("experiment") == selection.experiment.name
        and card.get("trial") == selection.trial.name
        and (card.get("source") or {}).get("trial_json_sha256") == trial_json_sha256
    )


def promote(
    experiment: str,
    dest: str,
    *,
    trial: str | None = None,
    backend: str = "local",
    storage: str | None = None,
    dry_run: bool = False,
    **cluster: Any,
) -> PromotionResult:
    """``cluster``: namespace / context / kubeconfig where ``backend="cluster"`` finds the experiment."""
    handle = open_experiment(experiment, backend, storage, **cluster)
    selection = select_trial(handle, trial, backend)
    verified = verify_checkpoint(selection)
    store = VersionStore.open(dest)
    states = store.states()
    incomplete = tuple(s.name for s in states if not s.complete)
    latest = store.latest()
    latest_name = f"v{latest}" if latest else None
    for state in states:
        if state.complete and _same_content(state, selection, verified.trial_json_sha256):
            return PromotionResult(
                state.name, store.version_uri(state.number), False, selection, state.card,
                dry_run, latest_name, incomplete,
            )  # fmt: skip
    if dry_run:
        number = store.next_number()
        return PromotionResult(
            f"v{number}", store.version_uri(number), False, selection, None, True, latest_name, incomplete
        )
    names = verified.source.names()
    number = store.claim_next(
        {
            "experiment": selection.experiment.name,
            "trial": selection.trial.name,
            "source": selection.checkpoint,
            "trial_json_sha256": verified.trial_json_sha256,
            "claimed_at": datetime.now(timezone.utc).isoformat(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
    )
    uri = store.version_uri(number)
    # Hash the source while it is copied (hashlib and zlib release the GIL): the digests are needed only
    # to check the copy and write the card, so the extra pass over the files costs no time of its own.
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="promote-digest") as pool:
            hashing = pool.submit(lambda: tuple(verified.source.digests(names, PART_SIZE)))
            store.transfer(number, verified.source, names, hashing.result)
        files = hashing.result()
    except OSError as error:  # the source changed under us (a file removed or unreadable mid-promotion)
        raise PromoteError(
            f"cannot read {getattr(error, 'filename', None) or selection.checkpoint} while promoting it "
            f"({error.strerror or error}); v{number} is left incomplete (no model card, never served). Let "
            "the trial's folder be, then run promote-best again: it takes the next version number"
        ) from None
    card = build_card(selection, verified, files, number, uri)
    store.write_card(number, card)
    store.set_latest(number)
    return PromotionResult(f"v{number}", uri, True, selection, card, False, f"v{store.latest()}", incomplete)
