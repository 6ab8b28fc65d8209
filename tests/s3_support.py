"""A real S3-compatible HTTP server for the tests: moto's server mode on 127.0.0.1.

Artifact stores reach it through s3fs exactly as they would reach AWS or MinIO (an
``endpoint_url`` and credentials in ``storage_options``); nothing of ours is mocked. Loaded as
a pytest plugin by ``tests/conftest.py``: ask for ``s3`` (a fresh bucket per test) or
``s3_server`` (the session's server).
"""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

KEY = "testing"
SECRET = "testing"
_buckets = itertools.count()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class S3Bucket:
    """One bucket on the test server, with the settings a stack needs to use it."""

    endpoint_url: str
    name: str

    @property
    def url(self) -> str:
        return f"s3://{self.name}/artifacts"

    @property
    def storage_options(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "key": KEY,
            "secret": SECRET,
            "client_kwargs": {"region_name": "us-east-1"},
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )

    def object_keys(self, prefix: str = "") -> list[str]:
        """Every object key in the bucket (under ``prefix``), straight from the server."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        )
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint URL of a moto S3 server running for the whole session."""
    from moto.server import ThreadedMotoServer

    # No real AWS: keep boto from looking for credentials or instance metadata elsewhere.
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: str) -> S3Bucket:
    """A fresh, empty bucket on the test server."""
    bucket = S3Bucket(s3_server, f"runstack-test-{os.getpid()}-{next(_buckets)}")
    bucket.client().create_bucket(Bucket=bucket.name)
    return bucket
