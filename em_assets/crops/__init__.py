"""Reproducible, streamed crops of chunked volumes into OME-Zarr (hemibrain, OpenOrganelle)."""
