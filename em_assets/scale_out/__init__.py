"""The same corpus for many machines: crops split into partitions that a distributed
executor spreads across workers, all writing into one OME-Zarr store on object storage.

Load it with `-m em_assets.scale_out.definitions` (or point a workspace at it).
"""
