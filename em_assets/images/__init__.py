"""Every dataset as OME-Zarr images (NGFF 0.4, zarr v2), and `open_image` to read them.

File datasets (TIFF stacks, DM3 slices) are converted here, streamed, with a pyramid; crop
stores are already such images and are only listed. Importing this package does not load
Dagster's definitions.
"""
