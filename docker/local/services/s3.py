"""An S3 endpoint (moto's standalone server) holding the lake's bucket."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from processes import Service, http_ok, log, spawn, wait

S3_PORT = int(os.environ.get("CONTINUUM_LOCAL_S3_PORT", "9000"))
S3_BUCKET = os.environ.get("CONTINUUM_LOCAL_S3_BUCKET", "continuum-lake")


def ready() -> bool:
    return http_ok(f"http://127.0.0.1:{S3_PORT}/moto-api/")


def start() -> None:
    spawn("s3", [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(S3_PORT)])
    took = wait("s3", ready, 60)
    import boto3

    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{S3_PORT}", region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    if S3_BUCKET not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=S3_BUCKET)
    log(f"s3 endpoint ready on http://127.0.0.1:{S3_PORT} (bucket {S3_BUCKET}) in {took:.1f}s")


SERVICE = Service(start, ready, f"http://127.0.0.1:{S3_PORT}")
