"""EMPIAR's API and EBI's data directory for EMPIAR-11759, with small slices in real DM3.

The entry JSON follows the API's shape (keyed by the accession; `pixel_width` in Å as a
float, `image_width` as a string, the section thickness only in `details`) with values
unlike the documented 8 × 8 × 50 nm, so the code must read them. The directory listing is
Apache autoindex markup, as ftp.ebi.ac.uk serves it, with an XML file and a `trakem2/`
folder beside the slices.
"""

from __future__ import annotations

import json

import numpy as np

from em_assets_tests.replicas.digital_micrograph import dm3_bytes
from em_assets_tests.replicas.http_server import ReplicaHTTPServer

API_ENTRY = "/empiar/api/entry/EMPIAR-11759/"
DATA_DIRECTORY = "/empiar/world_availability/11759/data/"
SLICES = [f"F57-8_test1_3VBSED_slice_{i:04d}.dm3" for i in range(4)]
SLICE_SHAPE = (22, 30)  # rows, columns: the real slices are 5500 x 5496
PIXEL_ANGSTROM = 75.0  # 7.5 nm, where 8 nm is documented
SECTION_NM = 45  # where 50 nm is documented


def entry_json(pixel_angstrom: float | None = PIXEL_ANGSTROM, count: int = len(SLICES)) -> dict:
    return {
        "EMPIAR-11759": {
            "title": "Developing retina in zebrafish 55 hpf larval eye",
            "status": "REL",
            "experiment_type": "SBF-SEM",
            "entry_doi": "10.6019/EMPIAR-11759",
            "release_date": "2023-11-09",
            "dataset_size": "475.3 MB",
            "citation": [{"doi": None, "journal": "unpublished"}],
            "imagesets": [
                {
                    "name": "SBF-SEM of a 55 hpf zebrafish larval eye",
                    "directory": "data",
                    "category": "reconstructed volumes",
                    "header_format": "DM3",
                    "data_format": "DM3",
                    "num_images_or_tilt_series": count,
                    "frames_per_image": 1,
                    "voxel_type": "UNSIGNED BYTE",
                    "pixel_width": pixel_angstrom,
                    "pixel_height": pixel_angstrom,
                    "image_width": str(SLICE_SHAPE[1]),
                    "image_height": str(SLICE_SHAPE[0]),
                    "details": (
                        "Serial block-face SEM (Gatan 3View) of the developing retina; "
                        f"section thickness {SECTION_NM} nm. Slices exported from DM."
                    ),
                }
            ],
        }
    }


HEADER_ROW = (
    '   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th>'
    '<th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th>'
    '<th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>'
)
PARENT_ROW = (
    '<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td>'
    '<td><a href="/empiar/world_availability/11759/">Parent Directory</a></td>'
    '<td>&nbsp;</td><td align="right">  - </td><td>&nbsp;</td></tr>'
)


def autoindex(entries: list[str]) -> str:
    """An Apache mod_autoindex page listing `entries` (folders end with '/')."""
    rows = []
    for name in entries:
        icon, alt, size = (
            ("folder.gif", "[DIR]", "  - ")
            if name.endswith("/")
            else ("unknown.gif", "[   ]", "29M")
        )
        rows.append(
            f'<tr><td valign="top"><img src="/icons/{icon}" alt="{alt}"></td>'
            f'<td><a href="{name}">{name}</a></td><td align="right">2023-11-09 10:21  </td>'
            f'<td align="right">{size}</td><td>&nbsp;</td></tr>'
        )
    return f"""<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html>
 <head><title>Index of {DATA_DIRECTORY}</title></head>
 <body>
<h1>Index of {DATA_DIRECTORY}</h1>
  <table>
{HEADER_ROW}
   <tr><th colspan="5"><hr></th></tr>
{PARENT_ROW}
{chr(10).join(rows)}
   <tr><th colspan="5"><hr></th></tr>
</table>
</body></html>
"""


def slices(
    pixel_um: float = PIXEL_ANGSTROM / 10_000, thickness_nm: float = SECTION_NM
) -> dict[str, bytes]:
    """The slices, calibrated in µm and stating their section thickness as the real ones
    do (the real ones: 0.007998250424861908 µm, 50 nm)."""
    rng = np.random.default_rng(11759)
    return {
        name: dm3_bytes(
            rng.integers(0, 256, SLICE_SHAPE, dtype=np.uint8), pixel_um, "µm", thickness_nm
        )
        for name in SLICES
    }


def serve_slices(server: ReplicaHTTPServer, files: dict[str, bytes]) -> None:
    for name, body in files.items():
        server.put(DATA_DIRECTORY + name, body)


def serve_empiar(server: ReplicaHTTPServer) -> dict[str, bytes]:
    files = slices()
    serve_slices(server, files)
    server.put(DATA_DIRECTORY + "F57-8_test1.xml", b"<?xml version='1.0'?><trakem2/>", "text/xml")
    listing = autoindex([*SLICES, "F57-8_test1.xml", "trakem2/"])
    server.put(DATA_DIRECTORY, listing.encode(), "text/html;charset=ISO-8859-1")
    server.put(API_ENTRY, json.dumps(entry_json()).encode(), "application/json")
    return files
