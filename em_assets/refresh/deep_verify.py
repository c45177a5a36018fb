"""The monthly deep verification: every stored file re-hashed, every crop re-digested.

Refreshes trust a stored copy whose fingerprint is unchanged (see `storage.fingerprint`);
what a fingerprint cannot see (a bit flipped below the filesystem, which moves neither
mtime nor ctime) is caught here. The job runs the "intact" checks alone (each dataset's
stored data, and its OME-Zarr images, every chunk decoded), tagged so they ignore
fingerprints; each result is an ordinary asset check result in the UI, and a failed one
blocks nothing until the next refresh fetches the damaged file again.

Stopped by default, as is the Dagster convention: a deployment turns it on deliberately.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import (
    AssetChecksDefinition,
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    define_asset_job,
)

from em_assets.refresh.verification import VERIFY_TAG

JOB_NAME = "deep_verify"
SCHEDULE_NAME = "monthly_deep_verify"
CRON = "0 3 1 * *"
"""03:00 on the first of each month."""


def build_deep_verify(
    intact_checks: Sequence[AssetChecksDefinition],
) -> tuple:
    """(job, schedule): the job over the datasets' intact checks (stored data and images),
    and its monthly schedule."""
    job = define_asset_job(
        name=JOB_NAME,
        selection=AssetSelection.checks(*intact_checks),
        tags={VERIFY_TAG: "deep"},
        description=(
            "Re-hashes every stored file, re-digests every crop and decodes every image chunk "
            "(fingerprints ignored), and reports each result as the dataset's intact checks."
        ),
    )
    schedule = ScheduleDefinition(
        name=SCHEDULE_NAME,
        job=job,
        cron_schedule=CRON,
        default_status=DefaultScheduleStatus.STOPPED,
        description="Monthly deep verification of everything stored (the deep_verify job).",
    )
    return job, schedule
