"""promote-best against a moto S3 server on 127.0.0.1 (real boto3 over HTTP): local and S3 trials."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from serving.cli import main
from tests.serving.conftest import TrialSpec


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def s3_trials(bucket: str) -> list[TrialSpec]:
    return [
        TrialSpec("exp-a", (0.40, 0.55), output_dir=f"s3://{bucket}/exp/exp-a"),
        TrialSpec("exp-b", (0.50, 0.80, 0.70), output_dir=f"s3://{bucket}/exp/exp-b"),
    ]


def keys(bucket: str, prefix: str = "") -> list[str]:
    import boto3

    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def test_local_trial_to_s3(recorded, bucket: str, moto, capsys) -> None:
    storage = recorded("exp", [TrialSpec("exp-a", (0.5, 0.6))])
    dest = f"s3://{bucket}/models/roberta-yahoo"
    code, out, err = run(capsys, "exp", "--to", dest, "--storage", storage, "--output", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["uri"] == f"{dest}/v1/" and result["created"]
    stored = keys(bucket, "models/roberta-yahoo/")
    assert "models/roberta-yahoo/v1/model.safetensors" in stored
    assert "models/roberta-yahoo/LATEST" in stored and "models/roberta-yahoo/.claims/v1.json" in stored
    import boto3

    client = boto3.client("s3")
    card = json.loads(
        client.get_object(Bucket=bucket, Key="models/roberta-yahoo/v1/model-card.json")["Body"].read()
    )
    for entry in card["files"]:
        head = client.head_object(
            Bucket=bucket, Key=f"models/roberta-yahoo/v1/{entry['path']}", ChecksumMode="ENABLED"
        )
        assert head["ContentLength"] == entry["size"]
    # The model card is the last object of the version, LATEST the last write of all.
    puts = [
        r["path"] for r in moto.requests if r["method"] == "PUT" and "/models/roberta-yahoo/" in r["path"]
    ]
    assert puts[-2].endswith("/v1/model-card.json") and puts[-1].endswith("/LATEST")
    assert puts[0].endswith("/.claims/v1.json")


def test_s3_trial_to_s3_uses_server_side_copy_and_rerun_is_a_no_op(
    recorded, bucket: str, moto, tmp_path: Path, capsys
) -> None:
    from trainer import s3

    storage = recorded("exp", s3_trials(bucket))
    # A file above the part size: copied with UploadPartCopy, checked by S3's composite checksum.
    from serving.store import PART_SIZE

    big = tmp_path / "extra.bin"
    big.write_bytes(os.urandom(PART_SIZE + 1024 * 1024))
    s3.upload_file(big, f"s3://{bucket}/exp/exp-b/extra.bin")
    moto.requests.clear()
    dest = f"s3://{bucket}/models/m"
    code, out, err = run(capsys, "exp", "--to", dest, "--storage", storage, "--output", "json")
    assert code == 0, err
    assert json.loads(out)["trial"] == "exp-b"
    writes = [r for r in moto.requests if r["method"] in ("PUT", "POST") and "/models/m/v1/" in r["path"]]
    data_writes = [r for r in writes if not r["path"].endswith("model-card.json")]
    # Every model file was written by a server-side copy: no file body travelled through this machine.
    copied_from = f"{bucket}/exp/exp-b/"
    assert data_writes
    for request in data_writes:  # a multipart copy's create / complete calls are POSTs without a body
        assert request["copy_source"].lstrip("/").startswith(copied_from) or request["method"] == "POST", (
            request
        )
    copies = {r["path"].rsplit("/", 1)[-1] for r in data_writes if r["copy_source"]}
    assert {"model.safetensors", "config.json", "trial.json", "extra.bin"} <= copies
    assert any("partNumber" in r["query"] and r["copy_source"] for r in data_writes)  # UploadPartCopy
    moto.requests.clear()
    code, out, _ = run(capsys, "exp", "--to", dest, "--storage", storage)
    assert code == 0 and "already promoted: v1" in out
    assert not [r for r in moto.requests if r["method"] in ("PUT", "POST")]


def test_s3_failure_mid_copy_leaves_no_complete_version(recorded, bucket: str, moto, capsys) -> None:
    storage = recorded("exp", s3_trials(bucket))
    dest = f"s3://{bucket}/models/m"
    moto.fail = lambda r: r["method"] == "PUT" and r["path"].endswith("/v1/tokenizer_config.json")
    code, _, err = run(capsys, "exp", "--to", dest, "--storage", storage)
    assert code != 0 and "access denied" in err and "Traceback" not in err
    stored = keys(bucket, "models/m/")
    assert not [k for k in stored if k.endswith("model-card.json")] and "models/m/LATEST" not in stored
    moto.fail = None
    code, out, err = run(capsys, "exp", "--to", dest, "--storage", storage, "--output", "json")
    result = json.loads(out)
    assert code == 0 and result["version"] == "v2" and result["incomplete_versions"] == ["v1"], err


def test_claims_are_exclusive_so_concurrent_promoters_get_different_numbers(bucket: str, s3_env) -> None:
    from serving.store import VersionStore

    first, second = VersionStore.open(f"s3://{bucket}/m"), VersionStore.open(f"s3://{bucket}/m")
    assert first.claim(1, {"token": "a"}) is True
    assert second.claim(1, {"token": "b"}) is False
    assert second.claim_next({"trial": "t"}) == 2


def test_local_dest_claims_are_exclusive(tmp_path: Path) -> None:
    from serving.store import VersionStore

    store = VersionStore.open(str(tmp_path / "m"))
    assert store.claim(1, {"token": "a"}) and not store.claim(1, {"token": "b"})
    assert store.claim_next({}) == 2


@pytest.mark.parametrize("problem", ["unreachable", "no_bucket", "no_credentials"])
def test_s3_problems_are_one_clear_line_without_secrets(
    recorded, bucket: str, capsys, monkeypatch, tmp_path: Path, problem: str
) -> None:
    storage = recorded("exp", [TrialSpec("exp-a", (0.5,))])
    dest = f"s3://{bucket}/models/m"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value-never-printed")
    if problem == "unreachable":
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        expected = "is unreachable; check AWS_ENDPOINT_URL"
    elif problem == "no_bucket":
        dest = "s3://no-such-bucket-here/models/m"
        expected = "bucket 'no-such-bucket-here' does not exist; create it first"
    else:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.delenv(name)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        expected = "no AWS credentials; set AWS_ACCESS_KEY_ID"
    code, out, err = run(capsys, "exp", "--to", dest, "--storage", storage)
    assert code != 0 and expected in err and "Traceback" not in err, err
    assert "s3cr3t" not in out + err


def test_a_corrupted_multipart_upload_is_caught_by_the_checksum_s3_reports(
    recorded, bucket: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    """A weights file above the part size goes up in parts; its copy is checked against the composite
    checksum S3 verified on receipt, so bytes that differ from the ones hashed (a file changed mid-promotion)
    are caught, and the version never gets a model card."""
    import serving.promote_files as files
    from serving.store import PART_SIZE

    storage = recorded("exp", [TrialSpec("exp-a", (0.5, 0.6))])
    dest = f"s3://{bucket}/models/big"
    real_digest = files.digest_stream

    def digest_of_other_bytes(path, stream, part_size, part_sha256=True):
        digest = real_digest(path, stream, part_size, part_sha256)
        if path == "model.safetensors":  # what was hashed is not what was sent
            fake = "A" * 43 + "="
            return dataclasses.replace(digest, sha256_b64=fake, composite_b64=fake, crc32_b64="AAAAAA==",
                                       crc32_composite_b64="AAAAAA==")  # fmt: skip
        return digest

    # The weights file made larger than one part, so it is a real multipart upload.
    source = Path(json.loads(run(capsys, "exp", "--to", str(tmp_path / "probe"), "--storage", storage,
                                 "--dry-run", "--output", "json")[1])["source"])  # fmt: skip
    with open(source / "model.safetensors", "ab") as weights:
        weights.write(os.urandom(PART_SIZE + 1))
    monkeypatch.setattr(files, "digest_stream", digest_of_other_bytes)
    code, _, err = run(capsys, "exp", "--to", dest, "--storage", storage)
    assert code != 0 and "model.safetensors" in err and "checksum differs" in err and "Traceback" not in err
    assert not [
        k for k in keys(bucket, "models/big/") if k.endswith("model-card.json") or k.endswith("LATEST")
    ]
    monkeypatch.setattr(files, "digest_stream", real_digest)
    code, out, err = run(capsys, "exp", "--to", dest, "--storage", storage)
    assert code == 0 and "promoted: v2" in out, err  # v1 stays incomplete; its number is not reused
