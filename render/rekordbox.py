"""rekordbox collection XML (DJ_PLAYLISTS): beat grids, keys and section cues for rekordbox and its converters.

The format (rekordbox's "xml_format_list"): COLLECTION/TRACK with
AverageBpm, TotalTime, Tonality and a file:// Location; one TEMPO child per
tempo change, each starting a grid of equal beats at `Inizio` seconds with
`Bpm`, `Metro` (meter) and `Battito` (the first beat's place in its bar),
running until the next TEMPO; POSITION_MARK children for cues (Num -1: a
memory cue). Converters to Serato, Traktor and Engine DJ read this file.

A detected grid drifts a little from beat to beat, so it cannot be one TEMPO
per beat interval (thousands of markers) nor one per song (a drifting grid).
Instead each TEMPO starts on a detected beat and runs for as many beats as an
equal grid at its rounded Bpm (two decimals, as rekordbox writes it) keeps
every beat within GRID_TOLERANCE_S of the detected one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote
from xml.etree import ElementTree as ET

from .tracks import Track, beat_times, short_key, xml_bytes

# Under the 1 ms a DJ's eye and ear cannot tell apart, leaving room for the sidecar's own millisecond rounding.
GRID_TOLERANCE_S = 0.0009
PRODUCT = "beatwatch"


@dataclass(frozen=True)
class TempoSegment:
    """`first` indexes the beat the segment starts on; it covers `count` beats at `bpm`."""

    first: int
    count: int
    bpm: float


def tempo_segments(times: list[float], tolerance_s: float = GRID_TOLERANCE_S) -> list[TempoSegment]:
    """Greedy equal-beat segments that stay within tolerance_s of every beat, Bpm at 2 decimals.

    A segment grows one beat at a time; only when the new beat misses its grid is the Bpm fitted again over
    the whole segment, so a steady hour of music costs one pass, not one fit per beat.
    """
    segments: list[TempoSegment] = []
    start = 0
    while start < len(times) - 1:
        bpm = round(60.0 / max(times[start + 1] - times[start], 1e-3), 2)
        stop = start + 2  # exclusive
        while stop < len(times):
            k = stop - start
            if abs(times[start] + k * 60.0 / bpm - times[stop]) > tolerance_s:
                fitted = _fit(times, start, stop + 1, tolerance_s)
                if fitted is None:
                    break
                bpm = fitted
            stop += 1
        segments.append(TempoSegment(start, stop - start, bpm))
        start = stop - 1  # the next segment starts on this one's last beat
    return segments


def _fit(times: list[float], start: int, stop: int, tolerance_s: float) -> float | None:
    """The 2-decimal Bpm whose grid from times[start] meets times[start:stop] within tolerance, if one does."""
    origin = times[start]
    steps = range(1, stop - start)
    period = sum((times[start + k] - origin) * k for k in steps) / sum(k * k for k in steps)
    if period <= 0:
        return None
    nearest = round(60.0 / period, 2)
    for bpm in (nearest, nearest + 0.01, nearest - 0.01):
        if all(abs(origin + k * 60.0 / bpm - times[start + k]) <= tolerance_s for k in steps):
            return round(bpm, 2)
    return None


def location(path: str) -> str:
    """rekordbox's Location: file://localhost and the absolute path, percent-encoded."""
    return "file://localhost" + quote(os.path.abspath(path))


def rekordbox_xml(tracks: list[Track], playlist: str = "beatwatch") -> bytes:
    root = ET.Element("DJ_PLAYLISTS", Version="1.0.0")
    ET.SubElement(root, "PRODUCT", Name=PRODUCT, Version=_version(), Company=PRODUCT)
    collection = ET.SubElement(root, "COLLECTION", Entries=str(len(tracks)))
    for number, track in enumerate(tracks, start=1):
        collection.append(_track(track, number))
    playlists = ET.SubElement(root, "PLAYLISTS")
    folder = ET.SubElement(playlists, "NODE", Type="0", Name="ROOT", Count="1")
    node = ET.SubElement(folder, "NODE", Name=playlist, Type="1", KeyType="0", Entries=str(len(tracks)))
    for number in range(1, len(tracks) + 1):
        ET.SubElement(node, "TRACK", Key=str(number))
    return xml_bytes(root)


def _track(track: Track, number: int) -> ET.Element:
    summary, info = track.summary, track.document["file"]
    attributes = {
        "TrackID": str(number),
        "Name": track.title,
        "Artist": track.metadata("artist") or "",
        "Album": track.metadata("album") or "",
        "Year": track.metadata("year") or "",
        "Kind": f"{str(info.get('format') or '').upper()} File",
        "Size": str(info.get("size") or 0),
        "TotalTime": str(round(track.duration)),
        "SampleRate": str(info.get("sample_rate") or 0),
        "AverageBpm": f"{summary['bpm']:.2f}" if summary.get("bpm") else "0.00",
        "Tonality": short_key(summary.get("key")) or "",
        "Location": location(track.path),
    }
    element = ET.Element("TRACK", attributes)
    beats = track.timeline.get("beats") or []
    times = beat_times(track)
    for segment in tempo_segments(times):
        first = beats[segment.first]
        bar = next((b for b in track.timeline.get("bars") or [] if b["bar"] == first.get("bar")), None)
        meter = (bar or {}).get("beats") or summary.get("meter") or 4
        ET.SubElement(element, "TEMPO", Inizio=f"{times[segment.first]:.3f}", Bpm=f"{segment.bpm:.2f}",
                      Metro=f"{meter}/4", Battito=str(first.get("position") or 1))
    for section in track.timeline.get("sections") or []:
        ET.SubElement(element, "POSITION_MARK", Name=_cue_name(section), Type="0", Start=f"{section['start']:.3f}",
                      Num="-1")
    return element


def _cue_name(section: dict) -> str:
    """"chorus (B)": the label a DJ scans for, and the letter that says which sections repeat."""
    return f"{section['label']} ({section['letter']})" if section.get("letter") else str(section["label"])


def _version() -> str:
    from beatwatch.analysis import ANALYZER_VERSION

    return ANALYZER_VERSION
