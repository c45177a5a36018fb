"""Check results every dataset shares: stored data intact, source agrees with its documentation."""

from __future__ import annotations

import math
from collections.abc import Callable

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue
from upath import UPath

from em_assets.formats.errors import CorruptFileError
from em_assets.integrity.verify import verify_files
from em_assets.manifest.metadata import format_voxel_size
from em_assets.manifest.model import DatasetFacts, FileEntry, Manifest
from em_assets.storage.paths import stored_path
from em_assets.storage.root import StorageRoot

Inspection = Callable[[UPath, FileEntry], list[str]]
"""Format-specific problems of one stored file that is present (empty list: none)."""

RecordedInspection = Callable[[FileEntry], list[str] | None]
"""The same problems of a file trusted by its unchanged fingerprint, judged from what its
entry recorded of its header when those bytes were read (None: not enough recorded; the
file is inspected)."""


def parsed_when_recorded(entry: FileEntry) -> list[str] | None:
    """For `readable_by`: a recorded header means the reader parsed these very bytes."""
    return None if entry.header is None else []


def readable_by(reader: Callable[[UPath], object]) -> Inspection:
    """An inspection that only asks the format's reader to parse the file."""

    def inspect(path: UPath, entry: FileEntry) -> list[str]:
        try:
            reader(path)
        except CorruptFileError as error:
            return [f"{entry.path}: {error}"]
        return []

    return inspect


def recorded_manifest(storage: StorageRoot, asset_name: str) -> Manifest:
    """The manifest the asset's last materialization stored (what its IO manager loads).

    A check reads it here instead of taking the asset as an input: an input costs a re-run
    a few events per check (loaded input, handled output), each written to the event log."""
    manifest = storage.stored_manifest(asset_name)
    if manifest is None:
        raise FileNotFoundError(
            f"{asset_name} has no readable stored manifest under {storage.base()}: "
            "materialize it again"
        )
    return manifest


def stored_data_intact(
    root: UPath,
    manifest: Manifest,
    inspect: Inspection | None = None,
    deep: bool = False,
    inspect_recorded: RecordedInspection | None = None,
) -> AssetCheckResult:
    """Every file or array present and identical to what the manifest recorded, and, with
    `inspect`, sound in its format.

    Entries whose fingerprint is unchanged are trusted without reading, and so is what their
    entries recorded of their headers (`inspect_recorded`); `deep` re-hashes every file,
    re-digests every array and inspects every file."""
    verification = verify_files(root, manifest, deep)
    problems = verification.problems
    if inspect is not None:
        for entry in manifest.files:
            if inspect_recorded is not None and entry.path in verification.trusted_paths:
                found = inspect_recorded(entry)
                if found is not None:
                    problems.extend(found)
                    continue
            path = stored_path(root, entry)
            if path.exists():
                problems.extend(inspect(path, entry))
    return AssetCheckResult(
        passed=not problems,
        metadata={
            "entries_checked": MetadataValue.int(len(manifest.files)),
            "verification": MetadataValue.text("deep" if deep else "fingerprint"),
            "entries_trusted_by_fingerprint": MetadataValue.int(verification.trusted),
            "entries_read_in_full": MetadataValue.int(verification.read),
            "problems": MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none"),
        },
    )


def agrees_with_documentation(
    measured_nm: list[float],
    measured_source: str,
    facts: DatasetFacts,
    check_name: str | None = None,
) -> AssetCheckResult:
    """WARN when the source's own voxel size differs from what its publishers document.

    The asset keeps the source's value either way: the source is the authority, and a
    difference is something for a person to look at, not to silently overwrite.
    """
    documented = list(facts.documented_voxel_size_nm)
    agrees = all(
        math.isclose(a, b, rel_tol=1e-3) for a, b in zip(measured_nm, documented, strict=True)
    )
    return AssetCheckResult(
        check_name=check_name,
        passed=agrees,
        severity=AssetCheckSeverity.WARN,
        description=None if agrees else "the source's voxel size differs from the documented one",
        metadata={
            "source_voxel_size": MetadataValue.text(format_voxel_size(measured_nm)),
            "source_voxel_size_from": MetadataValue.text(measured_source),
            "documented_voxel_size": MetadataValue.text(format_voxel_size(documented)),
            "documented_voxel_size_from": MetadataValue.text(facts.documented_voxel_size_source),
        },
    )
