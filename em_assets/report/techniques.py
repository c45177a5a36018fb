"""Imaging technique names, grouped so that variants of one technique count together.

Sources name techniques in many ways ("Enhanced FIB-SEM", "FIB SEM", "SBEM", "3View"); a
comparison counts them under one canonical name while each row keeps the source's variant.
"""

from __future__ import annotations

import re

_GROUPS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("FIB-SEM", re.compile(r"\bfib[\s-]*sem\b|focused[\s-]+ion[\s-]+beam", re.I)),
    (
        "SBF-SEM",
        re.compile(r"\bsbf[\s-]*sem\b|\bsbem\b|serial[\s-]+block[\s-]*face|\b3view\b", re.I),
    ),
    ("ATUM-SEM", re.compile(r"\batum\b", re.I)),
    ("ssTEM", re.compile(r"\bsstem\b|serial[\s-]+section[\s-]+tem", re.I)),
    ("ET", re.compile(r"tomograph", re.I)),
    ("TEM", re.compile(r"\btem\b|transmission electron", re.I)),
    ("SEM", re.compile(r"\bsem\b|scanning electron", re.I)),
)


def technique_group(technique: str) -> str:
    """The canonical technique a source's name belongs to (the name itself if unknown)."""
    for group, pattern in _GROUPS:
        if pattern.search(technique):
            return group
    return technique.strip()
