"""Apache-style directory listings (mod_autoindex), as EBI's file server serves them.

A listing is outside input: its links decide nothing about where files are written.
Entries are plain file names in the listed directory; anything else that looks like a
wanted file (`../x.dm3`, an absolute path, another host, a query string) is refused and
reported, never followed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

from em_assets.storage.paths import child_path_name_problem


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(value for name, value in attrs if name == "href" and value)


@dataclass
class Listing:
    files: list[str] = field(default_factory=list)
    """Plain file names with the wanted suffix, sorted, without duplicates."""
    refused: list[str] = field(default_factory=list)
    """Links that named a wanted file but not as a plain name in this directory."""


def parse_listing(html: str, suffix: str) -> Listing:
    """The files ending in `suffix` (case-insensitive) that a listing names."""
    parser = _Links()
    parser.feed(html)
    listing = Listing()
    names = set()
    for href in parser.hrefs:
        parts = urlsplit(href)
        if not unquote(parts.path).lower().endswith(suffix.lower()):
            continue  # sort links, the parent directory, sub-folders, other file types
        name = unquote(parts.path)
        if (
            parts.scheme
            or parts.netloc
            or parts.query
            or parts.fragment
            or child_path_name_problem(name)
        ):
            listing.refused.append(href)
        else:
            names.add(name)
    listing.files = sorted(names)
    return listing
