"""Benchmarks: transfers at the link's speed, memory that does not grow with the data.

Run from the repository root: `python -m benchmarks.run` (see `--help`).
"""
