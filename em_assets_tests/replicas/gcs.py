"""The GCS emulator (gcp-storage-emulator) as a writable `gs://` root.

gcsfs reads STORAGE_EMULATOR_HOST for its endpoint, and must be imported with
GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false, or it probes every bucket over gRPC and waits a
minute per operation against an emulator (conftest sets it before anything imports gcsfs).
"""

from __future__ import annotations

import logging
import socket

from gcp_storage_emulator.server import create_server


class GcsReplica:
    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
        self.server = create_server("127.0.0.1", self.port, in_memory=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GcsReplica:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
