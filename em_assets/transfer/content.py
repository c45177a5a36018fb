"""Recognising what a body is from its first bytes, so error pages are never saved as data."""

from __future__ import annotations

from dataclasses import dataclass

MAGIC_PREFIX_BYTES = 16


@dataclass(frozen=True)
class ExpectedFormat:
    """A binary format identified by the magic numbers its files start with."""

    name: str
    magics: tuple[bytes, ...]

    def describe_mismatch(self, head: bytes) -> str | None:
        """Why `head` is not this format, or None when it is."""
        if any(head.startswith(magic) for magic in self.magics):
            return None
        return f"body is not {self.name}: it starts with {describe_head(head)}"


def describe_head(head: bytes) -> str:
    """A short human description of a body's first bytes, naming HTML/JSON/XML when seen."""
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        kind = "an HTML page"
    elif stripped.startswith(b"<?xml") or stripped.startswith(b"<"):
        kind = "markup (XML/HTML)"
    elif stripped.startswith((b"{", b"[")):
        kind = "JSON"
    elif not head:
        kind = "nothing (empty body)"
    else:
        kind = "unrecognised bytes"
    return f"{kind} {head[:MAGIC_PREFIX_BYTES]!r}"


TIFF = ExpectedFormat(
    "TIFF",
    (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),  # classic and BigTIFF, both byte orders
)
# DigitalMicrograph files open with a big-endian version number: 3 for DM3, 4 for DM4.
DM3 = ExpectedFormat("DM3", (b"\x00\x00\x00\x03",))
