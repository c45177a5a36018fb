"""moto's S3 server: a writable bucket for storage roots, and public buckets read anonymously."""

from __future__ import annotations

import json

import boto3
from moto.server import ThreadedMotoServer

# moto checks the non-AWS action s3:HeadObject on HEAD, so public buckets must allow it.
PUBLIC_READ_ACTIONS = ["s3:GetObject", "s3:HeadObject"]


class S3Replica:
    def __init__(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def start(self) -> S3Replica:
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self.server.stop()

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
