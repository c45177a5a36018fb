"""Joining names that come from outside (listing entries, run config, manifest entries)
onto a directory: the one place that refuses anything that could escape it."""

from __future__ import annotations

import re

from upath import UPath

from em_assets.manifest.model import FileEntry
from em_assets.settings import ConfigurationError

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ +-]*$")


def child_path_name_problem(name: str) -> str | None:
    """Why `name` is not a plain file name (no separators, no `..`, no scheme), or None."""
    if not _SAFE_NAME.match(name) or ".." in name:
        return f"{name!r} is not a plain file name (letters, digits, '._ +-' only)"
    return None


def child_path(directory: UPath, name: str) -> UPath:
    """Join a single file name taken from outside input onto `directory`.

    A listing entry or a config value must never decide where a file is written.
    """
    problem = child_path_name_problem(name)
    if problem:
        raise ConfigurationError(
            f"refusing file name {problem}; nothing is written under {directory}."
        )
    return directory / name


def stored_path(root: UPath, entry: FileEntry) -> UPath:
    """The stored location of a manifest entry (`{asset}/{name}`, relative to the root),
    joined part by part so a tampered manifest cannot point outside the root."""
    path = root
    for part in entry.path.split("/"):
        path = child_path(path, part)
    return path
