"""Opening label layers: precomputed segmentations (hemibrain) and reopening any recorded one.

Facts about the hemibrain label layers (uint64 body ids, `compressed_segmentation`
encoding, sharded, the EM's 8 nm grid at voxel offset 0) are from the layers' own `info`
at gs://neuroglancer-janelia-flyem-hemibrain/v1.2/segmentation and
v1.2/mito-objects-grouped; they are read at run time, never assumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from em_assets.crops.labels import LabelSource
from em_assets.crops.precomputed import PrecomputedLevel
from em_assets.crops.volume import VolumeLevel
from em_assets.crops.zarr_source import open_multiscale
from em_assets.manifest.model import version_digest
from em_assets.settings import ConfigurationError

PRECOMPUTED_FILL = 0
"""Neuroglancer precomputed has no fill value in `info`: an absent chunk is all zeros, and
in a segmentation 0 means "no object" (neuroglancer's precomputed volume format docs)."""


def _precomputed_info(cloudpath: str, variable: str) -> dict[str, Any]:
    # Imported here, as in crops.precomputed: cloud-volume is slow to import.
    from cloudvolume import CloudVolume
    from cloudvolume.exceptions import InfoUnavailableError, ScaleUnavailableError

    try:
        return CloudVolume(
            cloudpath, mip=0, provenance={}, fill_missing=False, progress=False, cache=False
        ).info
    except (InfoUnavailableError, ScaleUnavailableError) as error:
        raise ConfigurationError(
            f"{variable}={cloudpath!r}: no readable precomputed 'info' there ({error})"
        ) from error


def precomputed_levels(cloudpath: str, variable: str) -> tuple[dict[str, Any], list[VolumeLevel]]:
    """A segmentation layer's `info` and its levels; anything but one channel is refused."""
    info = _precomputed_info(cloudpath, variable)
    if info.get("type") != "segmentation" or info.get("num_channels", 1) != 1:
        raise ConfigurationError(
            f"{variable}={cloudpath!r} is not a single-channel segmentation layer "
            f"(type {info.get('type')!r}, {info.get('num_channels')} channels)"
        )
    levels: list[VolumeLevel] = [
        PrecomputedLevel(cloudpath, mip, info) for mip in range(len(info["scales"]))
    ]
    return info, levels


def open_precomputed_label(name: str, cloudpath: str, variable: str) -> LabelSource:
    info, levels = precomputed_levels(cloudpath, variable)
    return LabelSource(
        name=name,
        url=cloudpath,
        levels=levels,
        version=version_digest(info),
        outside_value=PRECOMPUTED_FILL,
        note=f"{info['data_type']} ids and geometry from {cloudpath.removeprefix('precomputed://')}/info",
    )


def reopen_level(url: str, level_name: str) -> VolumeLevel:
    """The source level a stored label was copied from, to compare it with the copy."""
    levels: Sequence[VolumeLevel]
    if url.startswith("precomputed://"):
        _, levels = precomputed_levels(url, "recorded label source")
    else:
        _, levels = open_multiscale(url, "recorded label source")
    for level in levels:
        if level.name == level_name:
            return level
    raise ConfigurationError(f"{url} no longer has the level {level_name!r} the label came from")
