"""Which stored files make which image, for the three file datasets.

- EPFL: every stack is an image named after it (`training.ome.zarr`); `X_groundtruth.tif`
  is the label `groundtruth` of image `X` when `X.tif` was fetched too (else an image of
  its own, so nothing fetched goes unconverted).
- IDR: the xy stack, pages = z. The xz stack re-slices the same cells and stays a file.
- EMPIAR: the DM3 slices in name order, one z plane each, as the image `volume`.

Geometry comes from the manifest's file entries (read from each file's header at
download, or recorded from the same bytes earlier), so a slice that does not fit the stack
is named before anything is written.
"""

from __future__ import annotations

from upath import UPath

from em_assets.formats.tiff import StackHeader
from em_assets.images.convert import ImageSource, LabelSource
from em_assets.images.planes import (
    InconsistentSliceError,
    Planes,
    dm3_planes,
    stack_planes,
    tiff_planes,
)
from em_assets.manifest.model import FileEntry
from em_assets.storage.paths import stored_path

GROUND_TRUTH_SUFFIX = "_groundtruth"
GROUND_TRUTH_LABEL = "groundtruth"
EMPIAR_IMAGE = "volume"


def _stem(entry: FileEntry) -> str:
    return entry.path.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _stack(root: UPath, entry: FileEntry) -> Planes:
    """A TIFF stack's planes, from the geometry its entry recorded of its header when it
    has it (a page count besides shape and dtype), so an unchanged refresh opens no stack."""
    path = stored_path(root, entry)
    recorded = recorded_stack(entry)
    if recorded is not None:
        return stack_planes(path, recorded.shape, recorded.pages, recorded.dtype)
    return tiff_planes(path)


def recorded_stack(entry: FileEntry) -> StackHeader | None:
    """The TIFF header as the entry recorded it when its bytes were read (None: it was not):
    the one rule for every reader that trusts a recorded header instead of the file."""
    pages = (entry.header or {}).get("pages")
    if not isinstance(pages, int) or not entry.shape or not entry.dtype:
        return None
    return StackHeader(tuple(entry.shape), entry.dtype, pages)


def labelled_stacks(root: UPath, entries: list[FileEntry]) -> list[ImageSource]:
    """EPFL's stacks as images, each ground truth as the label of its image."""
    by_stem = {_stem(entry): entry for entry in entries}
    sources = []
    for stem, entry in by_stem.items():
        image_stem = stem.removesuffix(GROUND_TRUTH_SUFFIX)
        if stem != image_stem and image_stem in by_stem:
            continue  # a label, converted with its image
        labels, digests = [], {entry.path: entry.sha256}
        truth = by_stem.get(stem + GROUND_TRUTH_SUFFIX)
        if truth is not None:
            labels.append(LabelSource(GROUND_TRUTH_LABEL, _stack(root, truth), truth.path))
            digests[truth.path] = truth.sha256
        planes = _stack(root, entry)
        sources.append(ImageSource(stem, planes, digests, tuple(labels)))
    return sources


def tiff_stack(root: UPath, entry: FileEntry) -> list[ImageSource]:
    """One TIFF stack (IDR's xy stack) as one image named after the file."""
    return [ImageSource(_stem(entry), _stack(root, entry), {entry.path: entry.sha256})]


def slice_stack(root: UPath, entries: list[FileEntry]) -> list[ImageSource]:
    """DM3 slices, in name order, as one z, y, x volume; every slice must match the first."""
    ordered = sorted(entries, key=lambda entry: entry.path)
    first = ordered[0]
    for entry in ordered[1:]:
        if (entry.shape, entry.dtype) != (first.shape, first.dtype):
            raise InconsistentSliceError(
                f"{entry.path} is {entry.shape} {entry.dtype} but {first.path} is "
                f"{first.shape} {first.dtype}; slices of different shape or pixel type cannot "
                "be stacked into one volume (fetch it again; if the archive's copy is so, "
                "report it to EMPIAR)"
            )
    if not first.shape or len(first.shape) != 2 or not first.dtype:
        raise InconsistentSliceError(f"{first.path} is not a 2-D image ({first.shape})")
    planes = dm3_planes(
        [stored_path(root, entry) for entry in ordered],
        (first.shape[0], first.shape[1]),
        first.dtype,
    )
    return [ImageSource(EMPIAR_IMAGE, planes, {e.path: e.sha256 for e in ordered})]
