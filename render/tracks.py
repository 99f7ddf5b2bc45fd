"""An analysed track as the exporters see it: its sidecar document and where its audio is now.

Exporters read only this, never the database or the analyses, so any
sidecar (from the daemon, `beatwatch analyze --no-db` or another host)
exports the same way.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

# Short key names as DJ software and ID3 TKEY write them: "Am", "F#", "Bbm". Parsed here rather than with
# analysis.harmony.spelling, whose madmom import the daemon's supervisor (which writes tags) must not pay for.
_MODES = {"major": "", "minor": "m"}
_TONIC = re.compile(r"[A-G][#b]?")


@dataclass(frozen=True)
class Track:
    """document: the sidecar; path: the audio's current path (the database's; a file moved by `inbox.after`
    is no longer where its sidecar says)."""

    document: dict[str, Any]
    path: str

    @property
    def summary(self) -> dict[str, Any]:
        return self.document.get("summary") or {}

    @property
    def timeline(self) -> dict[str, Any]:
        return self.document.get("timeline") or {}

    @property
    def duration(self) -> float:
        return float(self.document["file"].get("duration") or 0.0)

    @property
    def name(self) -> str:
        """The file's name: what the per-track files of an export are named after."""
        return os.path.basename(self.path)

    def metadata(self, field: str) -> str | None:
        """artist, title, album or year as the file's own tags give them (sidecars from before tags were read
        have none)."""
        value = (self.document["file"].get("metadata") or {}).get(field)
        return str(value) if value not in (None, "") else None

    @property
    def title(self) -> str:
        """The tagged title, else the file name without its extension, as DJ software shows untagged files."""
        return self.metadata("title") or os.path.splitext(self.name)[0]


def short_key(key: str | None) -> str | None:
    """"Am" for "A minor", "F#" for "F# major"; None for no key or a name that is not tonic + major/minor."""
    if not key or " " not in key:
        return None
    tonic, mode = key.split(" ", 1)
    if mode not in _MODES or not _TONIC.fullmatch(tonic):
        return None
    return tonic + _MODES[mode]


def beat_times(track: Track) -> list[float]:
    return [float(beat["time"]) for beat in track.timeline.get("beats") or []]


def xml_bytes(root: ET.Element) -> bytes:
    """UTF-8 XML with the declaration DJ software writes itself (double quotes, "UTF-8"), indented."""
    ET.indent(root, space=" ")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode").encode() + b"\n"
