"""S3 storage: content-addressed media behind a boto3 client.

Tasks get the client from the amazon provider (``S3Hook(aws_conn_id).get_conn()``), so
AWS, MinIO and moto work alike through the connection's ``endpoint_url``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from include.album.domain.models import StoredMedia, validate_tenant_id

log = logging.getLogger(__name__)


def media_key(sha256: str, extension: str) -> str:
    return f"media/{sha256[:2]}/{sha256}.{extension}"


def summary_key(tenant_id: str, album_id: int) -> str:
    return f"album/{validate_tenant_id(tenant_id)}/{int(album_id)}_vision_summary_v1.json"


def _is_missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


class MediaStore:
    """Writes media once per distinct content: HEAD before PUT, so reruns upload nothing."""

    def __init__(self, s3_client: Any, bucket: str):
        self.s3 = s3_client
        self.bucket = bucket
        self.puts = 0  # objects actually uploaded by this store (reruns should keep it at 0)

    def ensure_bucket(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if not _is_missing(error):
                raise
            self.s3.create_bucket(Bucket=self.bucket)
            log.info("created bucket %s", self.bucket)

    def exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as error:
            if _is_missing(error):
                return False
            raise

    def put_media(self, data: bytes, *, mime: str, extension: str, width: int | None = None,
                  height: int | None = None) -> StoredMedia:
        sha256 = hashlib.sha256(data).hexdigest()
        key = media_key(sha256, extension)
        if not self.exists(key):
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=mime)
            self.puts += 1
        return StoredMedia(sha256=sha256, mime=mime, size=len(data), s3_key=key, width=width, height=height)

    def get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def delete(self, keys: list[str]) -> None:
        """Delete objects (missing ones are fine: S3 deletes are idempotent)."""
        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})

    def put_json(self, key: str, document: dict) -> int:
        """Overwrite ``key`` with canonical JSON (same document, same bytes); returns its size."""
        body = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        return len(body)
