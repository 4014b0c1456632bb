"""A real S3-compatible server on 127.0.0.1 for tests: moto's server (`moto[server]`) in its own
process, and fixtures giving a bucket and a data root on it.

Use in a test module:

    from s3_server import s3_server, s3_root  # noqa: F401 - pytest fixtures

    pytestmark = pytest.mark.s3

    def test_x(s3_root):             # VOTERPIPE_DATA_ROOT=s3://<fresh bucket>/root, scratch in tmp
        s3_root.url                   # 's3://voterpipe-test-1/root'
        s3_root.server.endpoint       # 'http://127.0.0.1:PORT'
        s3_root.server.env(s3_root.url, scratch=tmp_path / 'w1')   # env for a worker subprocess

`s3_server` is session-wide (one moto process); `s3_root` makes a fresh bucket per test and sets
AWS_ENDPOINT_URL, the AWS test credentials and region, VOTERPIPE_DATA_ROOT and VOTERPIPE_SCRATCH
with monkeypatch. Outside pytest: `server = start_server(); ...; server.stop()`.

`server.pause()` / `server.resume()` freeze and thaw the server process (SIGSTOP/SIGCONT): clients
then time out as with an unreachable host, and no object is lost (moto keeps its objects in
memory, so a stop and a new start would lose them; `stop()` is for the end).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from ops_servers import free_port  # noqa: F401 - also imported from here by test_s3_root

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"
_bucket_numbers = itertools.count(1)


@dataclass
class S3Server:
    process: subprocess.Popen
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, data_root: str | None = None, scratch: Path | None = None) -> dict[str, str]:
        """Environment variables for a client (a worker subprocess: pass {**os.environ, **env})."""
        values = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                  "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
        if data_root:
            values["VOTERPIPE_DATA_ROOT"] = data_root
        if scratch is not None:
            values["VOTERPIPE_SCRATCH"] = str(scratch)
        return values

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION)

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"voterpipe-test-{os.getpid()}-{next(_bucket_numbers)}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under `prefix` (sorted), without the empty 'dir/' markers pyarrow leaves
        when it deletes the last object of a directory."""
        paginator = self.client().get_paginator("list_objects_v2")
        return sorted(item["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
                      for item in page.get("Contents", []) if not item["Key"].endswith("/"))

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(timeout: float = 30.0) -> S3Server:
    """Start `python -m moto.server` on a free 127.0.0.1 port; return once it answers."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = S3Server(process, port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with code {process.returncode} (is moto[server] installed?)")
        try:
            with urllib.request.urlopen(f"{server.endpoint}/moto-api/", timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"moto_server did not answer on {server.endpoint} within {timeout:.0f}s")


@dataclass
class S3Root:
    server: S3Server
    bucket: str
    prefix: str
    scratch: Path

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def keys(self, under: str = "") -> list[str]:
        """Keys under the root, relative to it ('02_canonical/nc/2026-11-01/manifest.json')."""
        base = f"{self.prefix}/"
        return [key[len(base):] for key in self.server.keys(self.bucket, base + under)]


@pytest.fixture(scope="session")
def s3_server():
    server = start_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_root(s3_server, tmp_path, monkeypatch) -> S3Root:
    """A fresh bucket; VOTERPIPE_DATA_ROOT=s3://<bucket>/root with this test's scratch directory."""
    bucket = s3_server.create_bucket()
    root = S3Root(s3_server, bucket, "root", tmp_path / "scratch")
    for name, value in s3_server.env(root.url, root.scratch).items():
        monkeypatch.setenv(name, value)
    return root
