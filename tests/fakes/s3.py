"""A real S3-protocol server for tests: moto's S3 in server mode on 127.0.0.1.

Requests are served one at a time (a lock around the WSGI app), so a conditional
PUT's check and write are one step, as on S3 itself; moto alone checks and writes in
two steps and two racing threads could both pass the check.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent.parent

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
REGION = "ap-northeast-1"


@dataclass
class S3Server:
    endpoint: str

    def env(self) -> dict[str, str]:
        """The standard AWS environment variables that point a client at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        """A botocore S3 client, for the tests' own checks."""
        import botocore.session

        return botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
        )

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        client = self.client()
        out: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return sorted(out)


def _serialised_app(ignore_conditions: bool = False) -> Any:
    from moto.server import DomainDispatcherApplication, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ: dict[str, Any], start_response: Any) -> Any:
        if ignore_conditions:  # a store that does not implement conditional writes
            environ.pop("HTTP_IF_NONE_MATCH", None)
            environ.pop("HTTP_IF_MATCH", None)
        with lock:
            return list(app(environ, start_response))

    return serialised


def serve(port_file: str, ignore_conditions: bool = False) -> None:
    """Run the server in this process until killed; write its port to ``port_file``."""
    import logging

    from moto.moto_server.threaded_moto_server import MotoRequestHandler
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server(
        "127.0.0.1",
        0,
        _serialised_app(ignore_conditions),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    tmp = f"{port_file}.tmp"
    with open(tmp, "w") as fh:
        fh.write(str(server.server_port))
    os.replace(tmp, port_file)
    server.serve_forever()


@contextmanager
def s3_server(ignore_conditions: bool = False) -> Iterator[S3Server]:
    """Start moto's S3 in its own process on a free loopback port; stop it afterwards.

    Its own process, so the server's work runs beside the collector's instead of
    sharing the test process's interpreter lock.
    """
    with tempfile.TemporaryDirectory() as tmp:
        port_file = os.path.join(tmp, "port")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"from tests.fakes.s3 import serve; serve({port_file!r}, {ignore_conditions!r})",
            ],
            cwd=REPO,
        )
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(port_file):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto S3 server did not start")
                time.sleep(0.05)
            with open(port_file) as fh:
                port = int(fh.read())
            yield S3Server(f"http://127.0.0.1:{port}")
        finally:
            proc.kill()
            proc.wait(10)
