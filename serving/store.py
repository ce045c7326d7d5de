"""Versioned model stores: ``DEST/v<N>/`` immutable versions in a local folder or under an S3 prefix.

Layout (the same on disk and on S3)::

    DEST/.claims/v<N>.json   claimed first, exclusively (O_EXCL / S3 conditional put): a number is never
                             handed out twice, not even after a failed copy or to a concurrent promoter
    DEST/v<N>/...            the model files, checked (size + SHA-256) after the copy
    DEST/v<N>/model-card.json written after every file checked: a version without one is incomplete
    DEST/LATEST              "v<N>", written last

Copies: local -> local a file copy into ``DEST/.partial/v<N>/`` renamed into place once complete;
local -> S3 parallel multipart uploads; S3 -> S3 server-side managed copies (CopyObject /
UploadPartCopy); S3 -> local downloads. Every S3 write asks for an additional checksum (CRC32 for uploads,
SHA-256 for copies), which S3 verifies on receipt and reports back, so checking a copy needs no second
download.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.promote_errors import PromoteError
from serving.promote_files import (
    MAX_CONCURRENCY,
    CheckpointFiles,
    FileDigest,
    digest_stream,
    list_keys,
    read_bytes,
    s3_client,
)
from trainer import s3

LATEST = "LATEST"
MODEL_CARD = "model-card.json"
CLAIMS = ".claims"
PART_SIZE = 16 * 1024 * 1024  # fewer, larger parts: +12 % local->S3, +60 % S3->S3 vs 8 MiB (bench/promote.py)
_VERSION = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class VersionState:
    number: int
    complete: bool  # model-card.json present
    card: dict[str, Any] | None

    @property
    def name(self) -> str:
        return f"v{self.number}"


def transfer_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, max_concurrency=MAX_CONCURRENCY
    )


def _mismatch(where: str, expected: FileDigest, size: int, detail: str) -> PromoteError:
    return PromoteError(
        f"{where}: the copy does not match its source ({detail}; expected {expected.size} bytes, "
        f"sha256 {expected.sha256[:12]}…, got {size} bytes); the version is left incomplete (no "
        f"{MODEL_CARD}); check the storage and run promote-best again"
    )


class VersionStore(ABC):
    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")

    @staticmethod
    def open(dest: str) -> VersionStore:
        if s3.is_s3_uri(dest):
            return S3VersionStore(dest)
        return LocalVersionStore(str(Path(dest).expanduser().resolve()))

    def version_uri(self, number: int) -> str:
        """Where a version lies; S3 URIs end with '/' (KServe storageUri prefix collisions, kserve#3776)."""
        return f"{self.uri}/v{number}/" if s3.is_s3_uri(self.uri) else f"{self.uri}/v{number}"

    def next_number(self) -> int:
        return max((s.number for s in self.states()), default=0) + 1

    def claim_next(self, body: dict[str, Any]) -> int:
        """Claim the lowest unused version number; a concurrent promoter that wins one makes us try the next."""
        number = self.next_number()
        for _ in range(100):
            if self.claim(number, {**body, "token": uuid.uuid4().hex}):
                return number
            number += 1
        raise PromoteError(f"cannot claim a version number under {self.uri}; check {CLAIMS}/ there")

    @abstractmethod
    def states(self) -> list[VersionState]:
        """Every claimed or written version, complete or not, in number order."""

    @abstractmethod
    def claim(self, number: int, body: dict[str, Any]) -> bool: ...

    @abstractmethod
    def transfer(
        self,
        number: int,
        source: CheckpointFiles,
        names: list[str],
        digests: Callable[[], Sequence[FileDigest]],
    ) -> None:
        """Copy the files into version ``number``, then check each one's size and checksum against
        ``digests()`` (the source's, computed while the copy runs)."""

    @abstractmethod
    def write_card(self, number: int, card: dict[str, Any]) -> None: ...

    @abstractmethod
    def latest(self) -> int | None: ...

    @abstractmethod
    def _write_latest(self, number: int) -> None: ...

    def set_latest(self, number: int) -> None:
        # Two promoters may finish out of order: LATEST only moves forward.
        current = self.latest()
        if current is None or number > current:
            self._write_latest(number)


def _card_bytes(card: dict[str, Any]) -> bytes:
    return (json.dumps(card, indent=2, sort_keys=False) + "\n").encode()


class LocalVersionStore(VersionStore):
    @property
    def root(self) -> Path:
        return Path(self.uri)

    def _partial(self, number: int) -> Path:
        return self.root / ".partial" / f"v{number}"

    def states(self) -> list[VersionState]:
        numbers: set[int] = set()
        for folder in (self.root, self.root / CLAIMS, self.root / ".partial"):
            if folder.is_dir():
                for entry in folder.iterdir():
                    match = _VERSION.match(entry.name.removesuffix(".json"))
                    if match:
                        numbers.add(int(match.group(1)))
        out = []
        for number in sorted(numbers):
            card_path = self.root / f"v{number}" / MODEL_CARD
            card = json.loads(card_path.read_text()) if card_path.is_file() else None
            out.append(VersionState(number, card is not None, card))
        return out

    def claim(self, number: int, body: dict[str, Any]) -> bool:
        claims = self.root / CLAIMS
        try:
            claims.mkdir(parents=True, exist_ok=True)
            if (self.root / f"v{number}").exists() or self._partial(number).exists():
                return False
            fd = os.open(claims / f"v{number}.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as error:
            raise PromoteError(
                f"cannot write to {self.uri} ({error.strerror}); pass a writable --to folder"
            ) from None
        with os.fdopen(fd, "wb") as stream:
            stream.write(_card_bytes(body))
        return True

    def transfer(
        self,
        number: int,
        source: CheckpointFiles,
        names: list[str],
        digests: Callable[[], Sequence[FileDigest]],
    ) -> None:
        try:
            self._copy_all(number, source, names)
            self._check_all(number, digests())
        except OSError as error:
            raise PromoteError(
                f"cannot copy into {self._partial(number)} ({error.strerror or error}); v{number} is left "
                f"incomplete (no {MODEL_CARD}, never served). Free space or fix permissions and run "
                "promote-best again: it takes the next version number"
            ) from None

    def _copy_all(self, number: int, source: CheckpointFiles, names: list[str]) -> None:
        staging = self._partial(number)
        staging.mkdir(parents=True, exist_ok=False)
        for name in names:
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_s3:
                bucket, key = s3.parse_s3_uri(source.uri(name))
                with s3.s3_errors(source.uri(name), "download"):
                    s3_client().download_file(bucket, key, str(target), Config=transfer_config())
            else:
                shutil.copyfile(Path(source.location) / name, target)

    def _check_all(self, number: int, files: Sequence[FileDigest]) -> None:
        for expected in files:
            target = self._partial(number) / expected.path
            with open(target, "rb") as stream:
                got = digest_stream(expected.path, stream, PART_SIZE)
            if (got.size, got.sha256) != (expected.size, expected.sha256):
                raise _mismatch(str(target), expected, got.size, "size or SHA-256 differs")

    def write_card(self, number: int, card: dict[str, Any]) -> None:
        staging = self._partial(number)
        tmp = staging / f".{MODEL_CARD}.tmp"
        tmp.write_bytes(_card_bytes(card))
        os.replace(tmp, staging / MODEL_CARD)
        os.rename(staging, self.root / f"v{number}")  # the version appears whole, or not at all

    def latest(self) -> int | None:
        path = self.root / LATEST
        match = _VERSION.match(path.read_text().strip()) if path.is_file() else None
        return int(match.group(1)) if match else None

    def _write_latest(self, number: int) -> None:
        tmp = self.root / f".{LATEST}.tmp"
        tmp.write_text(f"v{number}\n")
        os.replace(tmp, self.root / LATEST)


class S3VersionStore(VersionStore):
    def __init__(self, uri: str):
        super().__init__(uri)
        self.bucket, prefix = s3.parse_s3_uri(self.uri)
        self.prefix = prefix.strip("/")

    @property
    def client(self) -> Any:
        return s3_client()

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def states(self) -> list[VersionState]:
        numbers: set[int] = set()
        complete: set[int] = set()
        for key in list_keys(f"s3://{self.bucket}/{self.key()}/"):
            rest = key[len(self.key()) + 1 :].split("/")
            if rest[0] == CLAIMS and len(rest) == 2 and (m := _VERSION.match(rest[1].removesuffix(".json"))):
                numbers.add(int(m.group(1)))
            elif (m := _VERSION.match(rest[0])) and len(rest) >= 2:
                numbers.add(int(m.group(1)))
                if rest[1:] == [MODEL_CARD]:
                    complete.add(int(m.group(1)))
        out = []
        for number in sorted(numbers):
            card = None
            if number in complete:
                card = json.loads(read_bytes(f"s3://{self.bucket}/{self.key(f'v{number}', MODEL_CARD)}"))
            out.append(VersionState(number, card is not None, card))
        return out

    def claim(self, number: int, body: dict[str, Any]) -> bool:
        from botocore.exceptions import ClientError

        key = self.key(CLAIMS, f"v{number}.json")
        with s3.s3_errors(f"s3://{self.bucket}/{key}", "write to"):
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=_card_bytes(body), IfNoneMatch="*")
            except ClientError as error:
                code = str(error.response.get("Error", {}).get("Code"))
                if code in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                    return False
                raise
            # A store that ignores If-None-Match overwrites instead of refusing: the read-back tells.
            stored = json.loads(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        return stored.get("token") == body["token"]

    def transfer(
        self,
        number: int,
        source: CheckpointFiles,
        names: list[str],
        digests: Callable[[], Sequence[FileDigest]],
    ) -> None:
        from boto3.s3.transfer import create_transfer_manager

        # Uploads ask for CRC32, the SDK's default: S3 verifies it on receipt like SHA-256, and it costs the
        # client next to nothing (SHA-256 per part halved throughput against plain upload_file). Server-side
        # copies ask for SHA-256: the server computes it, and some stores report none for a copied part.
        extra = {"ChecksumAlgorithm": "SHA256" if source.is_s3 else "CRC32"}
        target = f"s3://{self.bucket}/{self.key(f'v{number}')}/"
        with (
            s3.s3_errors(target, "copy to"),
            create_transfer_manager(self.client, transfer_config()) as manager,
        ):
            futures = []
            for name in names:
                key = self.key(f"v{number}", name)
                if source.is_s3:
                    src_bucket, src_key = s3.parse_s3_uri(source.uri(name))
                    futures.append(
                        manager.copy(
                            {"Bucket": src_bucket, "Key": src_key}, self.bucket, key, extra_args=extra
                        )
                    )
                else:
                    path = str(Path(source.location) / name)
                    futures.append(manager.upload(path, self.bucket, key, extra_args=extra))
            for future in futures:
                future.result()
        with ThreadPoolExecutor(MAX_CONCURRENCY) as pool:
            list(pool.map(lambda item: self._check(number, item), digests()))

    def _check(self, number: int, expected: FileDigest) -> None:
        key = self.key(f"v{number}", expected.path)
        where = f"s3://{self.bucket}/{key}"
        with s3.s3_errors(where, "check"):
            head = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
            size = int(head["ContentLength"])
            if size != expected.size:
                raise _mismatch(where, expected, size, "size differs")
            for algorithm in ("SHA256", "CRC32"):
                reported = (head.get(f"Checksum{algorithm}") or "").split("-")[0]
                if reported:
                    if not expected.matches(algorithm, reported):
                        raise _mismatch(where, expected, size, f"S3's {algorithm} checksum differs")
                    return
            # No checksum reported (an S3-compatible store without additional checksums): hash it here.
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            got = digest_stream(expected.path, body, PART_SIZE)
        if got.sha256 != expected.sha256:
            raise _mismatch(where, expected, got.size, "SHA-256 differs")

    def write_card(self, number: int, card: dict[str, Any]) -> None:
        key = self.key(f"v{number}", MODEL_CARD)
        with s3.s3_errors(f"s3://{self.bucket}/{key}", "write to"):
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=_card_bytes(card), ChecksumAlgorithm="SHA256"
            )

    def latest(self) -> int | None:
        from botocore.exceptions import ClientError

        key = self.key(LATEST)
        with s3.s3_errors(f"s3://{self.bucket}/{key}", "read"):
            try:
                text = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode().strip()
            except ClientError as error:
                if str(error.response.get("Error", {}).get("Code")) in ("NoSuchKey", "404"):
                    return None
                raise
        match = _VERSION.match(text)
        return int(match.group(1)) if match else None

    def _write_latest(self, number: int) -> None:
        key = self.key(LATEST)
        with s3.s3_errors(f"s3://{self.bucket}/{key}", "write to"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=f"v{number}\n".encode())
