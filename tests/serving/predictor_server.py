"""The local predictor as a real server: ``python -m serving.predictor`` in a subprocess on 127.0.0.1.

It listens on a port the OS picks (``--http_port 0``; the port is read from uvicorn's start line), its
stdout (the access log) and stderr go to files the tests read, and it is stopped with SIGTERM after use.
Fixtures: ``predictor`` (the tiny checkpoint from a folder), ``secured_predictor`` (the same model fetched
from moto S3 through ``kserve.storage``, bearer token, ``--log_payload``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TOKEN = "s3cr3t-token-for-tests"
_LISTENING = re.compile(r"Uvicorn running on http://([\d.]+):(\d+)")


class PredictorProcess:
    def __init__(
        self, workdir: Path, model_dir: str, name: str, *args: str, env: dict[str, str] | None = None
    ):
        self.workdir = workdir
        self.name = name
        self.argv = [sys.executable, "-m", "serving.predictor", "--model_dir", model_dir, "--model_name", name,
                     "--http_port", "0", *args]  # fmt: skip
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
        self.stdout = workdir / "stdout.log"
        self.stderr = workdir / "stderr.log"
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 180.0) -> PredictorProcess:
        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=err, env=self.env, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.stderr.read_text(errors="replace"))
            if match:
                self.host, self.port = match.group(1), int(match.group(2))
                self.url = f"http://{self.host}:{self.port}"
                if self.get("/v2/health/ready")[0] == 200:
                    return self
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the predictor exited ({self.process.returncode}):\n{self.logs()[-3000:]}"
                )
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the predictor did not become ready in {timeout}s:\n{self.logs()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def logs(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def access_log(self) -> list[dict[str, Any]]:
        lines = self.stdout.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def access_lines(self, prefix: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The access-log records whose id starts with ``prefix``, once ``count`` of them are written
        (the line is written after the response is sent, so a client can be a moment ahead of it)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.access_log() if r["id"].startswith(prefix)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        base = {"Content-Type": "application/json"} if body is not None else {}
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={**base, **(headers or {})}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, payload, answer_headers = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            status, payload, answer_headers = error.code, error.read(), dict(error.headers)
        try:
            decoded: Any = json.loads(payload)
        except ValueError:
            decoded = payload.decode(errors="replace")
        return status, decoded, {k.lower(): v for k, v in answer_headers.items()}

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        status, body, _ = self.request("GET", path, headers=headers)
        return status, body

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        status, answer, _ = self.request("POST", path, body, headers)
        return status, answer


@pytest.fixture(scope="session")
def predictor(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory):
    server = PredictorProcess(
        tmp_path_factory.mktemp("predictor"), str(tiny_checkpoint), "tiny",
        "--max_instances", "8", "--max_batch_size", "32", "--max_batch_wait_ms", "20",
    )  # fmt: skip
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def secured_predictor(tiny_checkpoint: Path, moto_server: Any, tmp_path_factory: pytest.TempPathFactory):
    import boto3

    s3_env = {"AWS_ENDPOINT_URL": moto_server.url, "AWS_ACCESS_KEY_ID": "testing",
              "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    client = boto3.client("s3", endpoint_url=moto_server.url, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")  # fmt: skip
    client.create_bucket(Bucket="served-models")
    for path in sorted(tiny_checkpoint.iterdir()):
        client.upload_file(str(path), "served-models", f"models/tiny/v1/{path.name}")
    server = PredictorProcess(
        tmp_path_factory.mktemp("secured-predictor"), "s3://served-models/models/tiny/v1", "tiny",
        "--auth_token_env", "PREDICTOR_TOKEN", "--log_payload",
        env={**s3_env, "PREDICTOR_TOKEN": TOKEN},
    )  # fmt: skip
    try:
        yield server.start()
    finally:
        server.stop()
