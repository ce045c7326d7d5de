"""Checkpoint files where they lie (a local folder or an S3 prefix): list, read, hash, fetch the small ones.

Hashes are SHA-256 of the whole file (the model card's) and CRC32, each also as the composite checksum
S3 reports for a multipart object (the checksum over the parts' checksums, part size = the transfer chunk
size), so a copy can be checked against the server's own checksum without downloading it again.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from trainer import s3

READ_BLOCK = 1024 * 1024
MAX_CONCURRENCY = 10  # parts in flight in one transfer; the client's connection pool is sized for it
# The settings boto3 resolves a client from: a change (another endpoint, other credentials) -> a new client.
_CLIENT_ENV = (
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE", "AWS_EC2_METADATA_DISABLED",
)  # fmt: skip
_CLIENTS: dict[str, Any] = {}
# Weights are hashed and copied, never loaded, so they are not fetched for verification.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx")


def s3_client() -> Any:
    """One S3 client per set of AWS settings, reused: building a boto3 client costs ~0.1-0.4 s of CPU.

    trainer.s3.client()'s timeouts and retries, plus a connection pool for MAX_CONCURRENCY parts.
    """
    key = hashlib.sha256("\0".join(os.environ.get(k) or "" for k in _CLIENT_ENV).encode()).hexdigest()
    if key not in _CLIENTS:
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=MAX_CONCURRENCY + 4,
        )
        _CLIENTS[key] = boto3.session.Session().client("s3", config=config)
    return _CLIENTS[key]


def list_keys(uri: str) -> list[str]:
    bucket, prefix = s3.parse_s3_uri(uri)
    keys: list[str] = []
    with s3.s3_errors(uri, "list"):
        for page in s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def read_bytes(uri: str) -> bytes:
    bucket, key = s3.parse_s3_uri(uri)
    with s3.s3_errors(uri, "read"):
        return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()


@dataclass(frozen=True)
class FileDigest:
    path: str  # relative, POSIX
    size: int
    sha256: str  # hex
    sha256_b64: str  # what S3 reports for a single-part object
    composite_b64: str | None  # what S3 reports for a multipart one (None: it fits in one part)
    crc32_b64: str = ""  # the same pair for CRC32, the checksum uploads ask for (see store.transfer)
    crc32_composite_b64: str | None = None

    def matches(self, algorithm: str, reported: str) -> bool:
        """Whether S3's reported checksum (``ChecksumSHA256`` / ``ChecksumCRC32``, any ``-N`` cut off) is ours."""
        if algorithm == "SHA256":
            return reported in (self.sha256_b64, self.composite_b64)
        return reported in (self.crc32_b64, self.crc32_composite_b64)


def digest_stream(path: str, stream: BinaryIO, part_size: int, part_sha256: bool = True) -> FileDigest:
    """SHA-256 and CRC32 of the whole stream, and their multipart composites. ``part_sha256=False`` skips
    the per-part SHA-256 (a second SHA-256 pass) where S3 will only report CRC32 composites (uploads)."""
    whole, whole_crc = hashlib.sha256(), 0
    parts: list[bytes] = []
    part_crcs: list[bytes] = []
    part = hashlib.sha256() if part_sha256 else None
    part_crc = in_part = size = 0
    while block := stream.read(READ_BLOCK):
        whole.update(block)
        whole_crc = zlib.crc32(block, whole_crc)
        size += len(block)
        view = memoryview(block)
        while view:
            take = min(len(view), part_size - in_part)
            if part is not None:
                part.update(view[:take])
            part_crc = zlib.crc32(view[:take], part_crc)
            in_part += take
            view = view[take:]
            if in_part == part_size:
                if part is not None:
                    parts.append(part.digest())
                    part = hashlib.sha256()
                part_crcs.append(part_crc.to_bytes(4, "big"))
                part_crc = in_part = 0
    if in_part:
        if part is not None:
            parts.append(part.digest())
        part_crcs.append(part_crc.to_bytes(4, "big"))
    composite = crc_composite = None
    if size >= part_size:  # boto3 switches to multipart at multipart_threshold == part_size
        if part_sha256:
            composite = _b64(hashlib.sha256(b"".join(parts)).digest())
        crc_composite = _b64(zlib.crc32(b"".join(part_crcs)).to_bytes(4, "big"))
    return FileDigest(
        path, size, whole.hexdigest(), _b64(whole.digest()), composite,
        _b64(whole_crc.to_bytes(4, "big")), crc_composite,
    )  # fmt: skip


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


class CheckpointFiles:
    """The files of one checkpoint; ``location`` is an absolute local path or an s3:// prefix."""

    def __init__(self, location: str):
        self.location = location.rstrip("/")
        self.is_s3 = s3.is_s3_uri(self.location)

    def uri(self, name: str) -> str:
        return f"{self.location}/{name}"

    def names(self) -> list[str]:
        """Relative paths of the files, hidden ones (a trainer's ``.trial.json.tmp``) left out."""
        if self.is_s3:
            bucket, prefix = s3.parse_s3_uri(self.location + "/")
            names = [key[len(prefix) :] for key in list_keys(f"s3://{bucket}/{prefix}")]
        else:
            root = Path(self.location)
            names = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
        return sorted(n for n in names if n and not any(part.startswith(".") for part in n.split("/")))

    def read_bytes(self, name: str) -> bytes:
        if self.is_s3:
            return read_bytes(self.uri(name))
        return (Path(self.location) / name).read_bytes()

    def digests(self, names: list[str], part_size: int) -> Iterator[FileDigest]:
        for name in names:
            if self.is_s3:
                bucket, key = s3.parse_s3_uri(self.uri(name))
                with s3.s3_errors(self.uri(name), "read"):
                    body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
                    yield digest_stream(name, body, part_size)
            else:  # a local source is uploaded with CRC32 checksums (store.transfer): no per-part SHA-256
                with open(Path(self.location) / name, "rb") as stream:
                    yield digest_stream(name, stream, part_size, part_sha256=False)

    def fetch_small(self, names: list[str], target: Path) -> Path:
        """A local folder holding every non-weight file (config, tokenizer), for loading with Auto*."""
        if not self.is_s3:
            return Path(self.location)
        for name in names:
            if name.endswith(WEIGHT_SUFFIXES):
                continue
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.read_bytes(name))
        return target
