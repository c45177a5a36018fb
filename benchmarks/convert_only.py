"""Convert one stored TIFF stack to an OME-Zarr image, as the EPFL asset does after its
download, and nothing else: the conversion's own time and memory, without the transfer,
Dagster or the code location.

    python -m benchmarks.convert_only STACK.tif OUT.ome.zarr
"""

import sys
import time

from upath import UPath

from em_assets.images.convert import ImageSource, write_image
from em_assets.images.planes import tiff_planes

VOXEL_SIZE_NM = (5.0, 5.0, 5.0)


def main() -> None:
    stack, output = UPath(sys.argv[1]), UPath(sys.argv[2])
    started = time.monotonic()
    write_image(output, ImageSource(stack.stem, tiff_planes(stack), {}), VOXEL_SIZE_NM, "bench")
    print(f"converted in {time.monotonic() - started:.2f} s")


if __name__ == "__main__":
    main()
