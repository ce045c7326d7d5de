"""S3 helpers shared by the trainer (checkpoints, datasets, models) and serving (promote-best).

boto3 honours AWS_ENDPOINT_URL (MinIO, moto) and the usual credential chain itself. Every botocore failure
a user can fix is turned into one ``S3Error`` line that says what to do.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trainer.errors import TrainerError

MULTIPART_THRESHOLD = 8 * 1024 * 1024
MULTIPART_CHUNKSIZE = 8 * 1024 * 1024


class S3Error(TrainerError):
    """An S3 location that cannot be read or written, with the fix in the message."""

    exit_code = 2


def is_s3_uri(value: str) -> bool:
    return value.startswith("s3://")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` -> ``("bucket", "a/b/")``."""
    if not is_s3_uri(uri):
        raise S3Error(f"not an S3 URI: {uri!r}; use s3://bucket/prefix/")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or "/" in bucket:
        raise S3Error(f"S3 URI has no bucket: {uri!r}; use s3://bucket/prefix/")
    return bucket, key


def join_key(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}" if prefix.strip("/") else name


def client() -> Any:
    import boto3
    from botocore.config import Config

    # Fail in seconds, not minutes, when the endpoint is wrong; standard retries cover transient errors.
    config = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})
    # A fresh session: boto3's default one caches credentials from the first call in the process.
    return boto3.session.Session().client("s3", config=config)


def transfer_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNKSIZE, max_concurrency=4
    )


@contextmanager
def s3_errors(uri: str, action: str, bucket_call: bool = False):
    """Translate botocore exceptions raised inside the block into one actionable ``S3Error``.

    ``bucket_call``: the block calls a bucket-level API (head_bucket), whose bare 404 means no bucket.
    """
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or "the AWS default endpoint"
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError):
        raise S3Error(
            f"cannot {action} {uri}: no AWS credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE / an IRSA role)"
        ) from None
    except EndpointConnectionError:
        raise S3Error(
            f"cannot {action} {uri}: S3 endpoint {endpoint} is unreachable; check AWS_ENDPOINT_URL and the network"
        ) from None
    except (ClientError, S3UploadFailedError) as error:
        # upload_file wraps the ClientError that says what went wrong in an S3UploadFailedError.
        cause = error if isinstance(error, ClientError) else error.__context__
        response = getattr(cause, "response", None) or {}
        code = str(response.get("Error", {}).get("Code", ""))
        bucket = parse_s3_uri(uri)[0]
        if code == "NoSuchBucket" or (bucket_call and code in ("404", "NotFound")):
            raise S3Error(
                f"cannot {action} {uri}: bucket {bucket!r} does not exist; create it first"
            ) from None
        if code in ("NoSuchKey", "404", "NotFound"):
            raise S3Error(f"cannot {action} {uri}: no such object; check the path") from None
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise S3Error(
                f"cannot {action} {uri}: access denied ({code}); check the credentials and bucket policy"
            ) from None
        raise S3Error(f"cannot {action} {uri}: {code or error}; check the URI and the S3 service") from None
    except BotoCoreError as error:
        raise S3Error(f"cannot {action} {uri}: {error}; check AWS_ENDPOINT_URL and the credentials") from None


def upload_dir(local_dir: str | Path, uri: str) -> list[str]:
    """Upload every file under ``local_dir`` to the ``uri`` prefix (multipart above 8 MiB); returns the keys.

    A caller that needs "complete" semantics uploads its marker file (``trial.json``) separately, last.
    """
    bucket, prefix = parse_s3_uri(uri)
    local_dir = Path(local_dir)
    s3 = client()
    keys = []
    with s3_errors(uri, "upload to"):
        for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
            key = join_key(prefix, path.relative_to(local_dir).as_posix())
            s3.upload_file(str(path), bucket, key, Config=transfer_config())
            keys.append(key)
    return keys


def upload_file(local_path: str | Path, uri: str) -> None:
    bucket, key = parse_s3_uri(uri)
    with s3_errors(uri, "upload to"):
        client().upload_file(str(local_path), bucket, key, Config=transfer_config())


def list_keys(uri: str) -> list[str]:
    bucket, prefix = parse_s3_uri(uri)
    s3 = client()
    keys: list[str] = []
    with s3_errors(uri, "list"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def read_bytes(uri: str) -> bytes:
    bucket, key = parse_s3_uri(uri)
    with s3_errors(uri, "read"):
        return client().get_object(Bucket=bucket, Key=key)["Body"].read()


def download(uri: str, local_dir: str | Path) -> Path:
    """Download one object, or every object under a prefix, into ``local_dir``; returns the local path.

    An object ``s3://b/data/train.csv`` becomes ``local_dir/train.csv``; a prefix ``s3://b/model/`` becomes
    ``local_dir`` holding the files below it with their relative paths.
    """
    bucket, key = parse_s3_uri(uri)
    local_dir = Path(local_dir)
    local_dir.mkdir(parents=True, exist_ok=True)
    s3 = client()
    prefix = key if key.endswith("/") or not key else key + "/"
    keys = [k for k in list_keys(f"s3://{bucket}/{prefix}") if not k.endswith("/")]
    with s3_errors(uri, "download"):
        if not keys and key and not key.endswith("/"):
            target = local_dir / Path(key).name
            s3.download_file(bucket, key, str(target), Config=transfer_config())
            return target
        if not keys:
            raise S3Error(f"cannot download {uri}: nothing under that prefix; check the path")
        for item in keys:
            target = local_dir / item[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item, str(target), Config=transfer_config())
    return local_dir
