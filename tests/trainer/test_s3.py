"""S3 helpers against a real (moto) S3 server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from trainer import s3
from trainer.checkpoint import read_trial_json
from trainer.errors import TrainerInputError


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/a/b/", ("bucket", "a/b/")),
        ("s3://bucket", ("bucket", "")),
        ("s3://b/k.csv", ("b", "k.csv")),
    ],
)
def test_parse_s3_uri(uri: str, expected: tuple[str, str]) -> None:
    assert s3.parse_s3_uri(uri) == expected


@pytest.mark.parametrize("uri", ["s3://", "s3:///key", "/local/path", "gs://bucket/x"])
def test_bad_s3_uris_are_refused(uri: str) -> None:
    with pytest.raises(s3.S3Error, match="s3://bucket/prefix/"):
        s3.parse_s3_uri(uri)


def test_upload_dir_and_download_round_trip_with_multipart(bucket: str, tmp_path: Path) -> None:
    import boto3

    source = tmp_path / "src"
    (source / "nested").mkdir(parents=True)
    big = os.urandom(s3.MULTIPART_THRESHOLD + 1024 * 1024)  # above the threshold: a multipart upload
    (source / "model.safetensors").write_bytes(big)
    (source / "nested" / "config.json").write_text('{"a": 1}')
    keys = s3.upload_dir(source, f"s3://{bucket}/models/run-1/")
    assert keys == ["models/run-1/model.safetensors", "models/run-1/nested/config.json"]
    head = boto3.client("s3").head_object(Bucket=bucket, Key="models/run-1/model.safetensors")
    assert "-" in head["ETag"]  # S3 marks multipart objects with "<md5>-<parts>" ETags

    target = s3.download(f"s3://{bucket}/models/run-1", tmp_path / "dst")
    assert (target / "model.safetensors").read_bytes() == big
    assert (target / "nested" / "config.json").read_text() == '{"a": 1}'
    single = s3.download(f"s3://{bucket}/models/run-1/nested/config.json", tmp_path / "one")
    assert single.name == "config.json" and single.read_text() == '{"a": 1}'


def test_missing_bucket_is_named(s3_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(s3.S3Error, match="bucket 'no-such-bucket' does not exist; create it first"):
        s3.upload_dir(tmp_path, "s3://no-such-bucket/x/")


def test_unreachable_endpoint_names_aws_endpoint_url(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(s3.S3Error, match="is unreachable; check AWS_ENDPOINT_URL"):
        s3.read_bytes("s3://bucket/key")


def test_no_credentials_is_named(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(s3.S3Error, match="no AWS credentials; set AWS_ACCESS_KEY_ID"):
        s3.list_keys("s3://bucket/prefix/")


def test_read_trial_json_errors(bucket: str, tmp_path: Path) -> None:
    with pytest.raises(s3.S3Error, match="no such object"):
        read_trial_json(f"s3://{bucket}/exp/trial-1/")
    with pytest.raises(TrainerInputError, match=r"no trial\.json in"):
        read_trial_json(str(tmp_path))
