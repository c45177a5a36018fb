"""How thoroughly a run checks what is already stored: by fingerprint (the default), or deep.

By fingerprint, a stored file or crop whose stat (or object listing) is unchanged since its
digest was verified is trusted without reading it, so an unchanged refresh costs a stat per
file. Deep re-hashes every file and re-digests every crop: it is how rot below the
filesystem (a flipped bit that leaves mtime and ctime alone) is caught, monthly by the
`deep_verify` job or on demand with `verify: deep` in an asset's run config.
"""

from __future__ import annotations

from typing import Any, Literal

from dagster import AssetCheckExecutionContext, Config
from pydantic import Field

VERIFY_TAG = "em_assets/verify"
"""A run tagged with this (value "deep") re-reads everything in its blocking checks."""


class VerifiedConfig(Config):
    """Run config every dataset asset shares: the verification mode of its reuse check."""

    verify: Literal["fingerprint", "deep"] = Field(
        default="fingerprint",
        description="fingerprint: trust a stored copy whose stat/listing is unchanged; "
        "deep: re-hash every stored file, re-digest every crop",
    )

    @property
    def deep(self) -> bool:
        return self.verify == "deep"

    def recorded(self) -> dict[str, Any]:
        """The config a manifest records and a refresh repeats: the one-off verification
        mode is left out, so a deep run once does not make every refresh deep."""
        return self.model_dump(exclude={"verify"})


def deep_requested(context: AssetCheckExecutionContext) -> bool:
    """The run asks for deep verification (content re-read whatever the fingerprints say)."""
    return context.run.tags.get(VERIFY_TAG) == "deep"
