"""moto's S3 server: a writable bucket for storage roots, and public buckets read anonymously.

Conditional writes as S3 makes them. S3 evaluates a write's condition (`If-None-Match: *`,
`If-Match: <etag>`) and the write as one step: of racing creates exactly one succeeds, the
others get 412. A conditional write on a key while another is in progress may instead get
409 ConditionalRequestConflict, to be retried (Amazon S3 API reference, PutObject
`If-None-Match`: "If a concurrent operation occurs during the upload S3 returns a 409
ConditionalRequestConflict response. On a 409 failure you should retry the upload.").
moto checks the condition, then writes, in whichever of its server threads the request
landed, so two racing creates could both succeed; this replica holds a lock from the check
to the end of the write, and `S3Replica.conditional_write_in_progress` makes S3's 409 happen
on demand. The leases on s3:// roots rely on both.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer

# moto checks the non-AWS action s3:HeadObject on HEAD, so public buckets must allow it.
PUBLIC_READ_ACTIONS = ["s3:GetObject", "s3:HeadObject"]


_CONDITIONAL = threading.Lock()
"""Held from a condition's check to the end of its write: check and write are one step."""
_IN_PROGRESS: set[tuple[str, str]] = set()
"""(bucket, key) pairs another client is writing conditionally: answered with 409."""
CONFLICT_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ConditionalRequestConflict</Code>'
    "<Message>A conflicting conditional operation is currently in progress against this "
    "resource. Please try again.</Message></Error>"
)


def _as_s3_conditions(handle: Callable[[S3Response], Any]) -> Callable[[S3Response], Any]:
    def conditional(response: S3Response) -> Any:
        if not (response.headers.get("If-None-Match") or response.headers.get("If-Match")):
            return handle(response)
        if (response.bucket_name, response.parse_key_name()) in _IN_PROGRESS:
            return 409, {}, CONFLICT_BODY
        with _CONDITIONAL:
            return handle(response)

    conditional.as_s3 = True  # type: ignore[attr-defined]  # a marker, once per process
    return conditional


def _add_s3_conditions() -> None:
    """Wrap moto's object PUT and DELETE handlers (moto has no hook for this)."""
    if getattr(S3Response.put_object, "as_s3", False):
        return
    for name in ("put_object", "delete_object"):
        setattr(S3Response, name, _as_s3_conditions(getattr(S3Response, name)))


class S3Replica:
    def __init__(self) -> None:
        _add_s3_conditions()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def start(self) -> S3Replica:
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        _IN_PROGRESS.clear()
        self.server.stop()

    @contextmanager
    def conditional_write_in_progress(self, bucket: str, key: str) -> Iterator[None]:
        """Until the block ends, another client is in the middle of a conditional write of
        `key`: conditional writes of it get S3's 409 ConditionalRequestConflict."""
        _IN_PROGRESS.add((bucket, key))
        try:
            yield
        finally:
            _IN_PROGRESS.discard((bucket, key))

    def client(self):
        return client_for(self.endpoint_url)

    def create_bucket(self, name: str, public: bool = False, listable: bool = True) -> None:
        create_bucket(self.client(), name, public, listable)


def client_for(endpoint_url: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_bucket(client, name: str, public: bool = False, listable: bool = True) -> None:
    """A bucket; `public` ones are readable anonymously, and listable only if asked."""
    client.create_bucket(Bucket=name)
    if public:
        actions = PUBLIC_READ_ACTIONS + (["s3:ListBucket"] if listable else [])
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": actions,
                    "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
                }
            ],
        }
        client.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
