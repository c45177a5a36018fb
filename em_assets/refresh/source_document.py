"""A source's metadata document known by its bytes: a byte-identical document needs no parsing.

The reader of a source's metadata (cloud-volume for a precomputed `info`) stays the reader
whenever the document has to be read. After it has read one, the document's sha256 and the
reader's parse are recorded in the manifest (`SourceDocument`), provided the parse is the
document's JSON exactly (the reader followed no redirect and added nothing, and both saw the
same bytes). A later run fetches the bytes (one small GET, no reader started) and, when
their digest is the recorded one, takes the recorded parse; any other bytes, or a failed
fetch, go to the reader again.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlsplit

from em_assets.manifest.model import SourceDocument


def fetch_bytes(url: str) -> bytes | None:
    """The document's bytes, anonymously, or None when they cannot be had: the reader
    then reads the document itself, with its own retries, and says what is wrong."""
    from fsspec.core import url_to_fs  # with the scheme's filesystem, only when needed

    scheme = urlsplit(url).scheme
    options: dict[str, Any] = {}
    if scheme == "gs":
        options = {"token": "anon"}
    elif scheme == "s3":
        options = {"anon": True}
    try:
        fs, path = url_to_fs(url, **options)
        return bytes(fs.cat_file(path))
    except Exception:  # any failure means: let the reader read it, and report it
        return None


def recorded_parse(
    url: str, body: bytes | None, recorded: SourceDocument | None
) -> dict[str, Any] | None:
    """The parse recorded for exactly these bytes at this URL, else None (read it)."""
    if body is None or recorded is None or recorded.url != url:
        return None
    return recorded.parsed if _sha256(body) == recorded.sha256 else None


def record(url: str, body: bytes | None, parsed: dict[str, Any]) -> SourceDocument | None:
    """What to record of a document the reader has just parsed; None when the parse is not
    the document's JSON (a redirect followed, a changed document between the two reads)."""
    if body is None:
        return None
    try:
        plain = json.loads(body)
    except ValueError:
        return None
    if plain != parsed:
        return None
    return SourceDocument(url=url, sha256=_sha256(body), parsed=parsed)


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
