"""The transfer settings as a Dagster resource, so timeouts and retries are run-configurable."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from em_assets.logger import Logger
from em_assets.transfer.client import HttpClient
from em_assets.transfer.retry import RetryPolicy


class HttpTransfer(ConfigurableResource):
    """Timeouts and retry budget for every HTTP(S) request the assets make."""

    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=60.0, gt=0, description="longest silence mid-body")
    max_attempts: int = Field(default=6, ge=1, description="consecutive failures before giving up")
    base_delay_s: float = Field(default=1.0, ge=0, description="first backoff; doubles per retry")
    max_delay_s: float = Field(default=60.0, ge=0)

    def client(self, log: Logger) -> HttpClient:
        return HttpClient(
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
            policy=RetryPolicy(
                max_attempts=self.max_attempts,
                base_delay_s=self.base_delay_s,
                max_delay_s=self.max_delay_s,
            ),
            log=log,
        )
