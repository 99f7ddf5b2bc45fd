"""Traktor collection NML: grid marker, tempo, key and section cues for Traktor Pro.

Traktor keeps one BPM per track and anchors its grid with CUE_V2 TYPE="4"
markers (START in milliseconds); a song whose tempo moves gets a grid
marker on every downbeat where the detected beats have drifted more than
DRIFT_S from Traktor's equal grid, so its grid is re-anchored where it would
otherwise wander. Sections become plain cues (TYPE="0"), the key
MUSICAL_KEY VALUE 0..23 (C major .. B major, then C minor .. B minor).
Locations are Traktor's DIR syntax: every folder followed by "/:".
"""

from __future__ import annotations

import os
from xml.etree import ElementTree as ET

from beatwatch.analysis.harmony.notation import open_key
from beatwatch.analysis.harmony.spelling import pitch_class

from .tracks import Track, xml_bytes

# The eye catches a grid line 10 ms off a transient; under that Traktor's one grid is as good as the detected beats.
DRIFT_S = 0.010


def musical_key(key: str | None) -> int | None:
    """Traktor's MUSICAL_KEY value of a key name such as "A minor" (21)."""
    if not key or " " not in key:
        return None
    tonic, mode = key.split(" ", 1)
    pc = pitch_class(tonic)
    if pc is None or mode not in ("major", "minor"):
        return None
    return pc + (12 if mode == "minor" else 0)


def traktor_dir(path: str) -> tuple[str, str]:
    """(DIR, FILE) of an absolute path: "/:home/:me/:Music/:" and "song.mp3"."""
    folder, name = os.path.split(os.path.abspath(path))
    parts = [part for part in folder.split("/") if part]
    return "".join(f"/:{part}" for part in parts) + "/:", name


def grid_markers(track: Track) -> list[float]:
    """Downbeat times where the grid is anchored: the first, then wherever one BPM has drifted past DRIFT_S."""
    bpm = track.summary.get("bpm")
    downbeats = [float(b["time"]) for b in track.timeline.get("beats") or [] if b.get("position") == 1]
    beats = track.timeline.get("beats") or []
    if not bpm or not downbeats:
        return downbeats[:1]
    period = 60.0 / float(bpm)
    markers = [downbeats[0]]
    for beat in beats:
        time = float(beat["time"])
        if time <= markers[-1]:
            continue
        predicted = markers[-1] + round((time - markers[-1]) / period) * period
        if abs(predicted - time) > DRIFT_S and beat.get("position") == 1:
            markers.append(time)
    return markers


def traktor_nml(tracks: list[Track], playlist: str = "beatwatch") -> bytes:
    root = ET.Element("NML", VERSION="19")
    ET.SubElement(root, "HEAD", COMPANY="www.native-instruments.com", PROGRAM="Traktor")
    ET.SubElement(root, "MUSICFOLDERS")
    collection = ET.SubElement(root, "COLLECTION", ENTRIES=str(len(tracks)))
    keys = []
    for track in tracks:
        collection.append(_entry(track))
        folder, name = traktor_dir(track.path)
        keys.append(folder + name)
    playlists = ET.SubElement(root, "PLAYLISTS")
    top = ET.SubElement(playlists, "NODE", TYPE="FOLDER", NAME="$ROOT")
    subnodes = ET.SubElement(top, "SUBNODES", COUNT="1")
    node = ET.SubElement(subnodes, "NODE", TYPE="PLAYLIST", NAME=playlist)
    listing = ET.SubElement(node, "PLAYLIST", ENTRIES=str(len(tracks)), TYPE="LIST", UUID="")
    for key in keys:
        entry = ET.SubElement(listing, "ENTRY")
        ET.SubElement(entry, "PRIMARYKEY", TYPE="TRACK", KEY=key)
    return xml_bytes(root)


def _entry(track: Track) -> ET.Element:
    summary = track.summary
    entry = ET.Element("ENTRY", TITLE=track.title, ARTIST=track.metadata("artist") or "")
    folder, name = traktor_dir(track.path)
    ET.SubElement(entry, "LOCATION", DIR=folder, FILE=name, VOLUME="", VOLUMEID="")
    if track.metadata("album"):
        ET.SubElement(entry, "ALBUM", TITLE=track.metadata("album") or "")
    info = {"PLAYTIME": str(round(track.duration)), "PLAYTIME_FLOAT": f"{track.duration:.6f}",
            "FILESIZE": str((track.document["file"].get("size") or 0) // 1024)}
    if open_key(summary.get("key")):
        info["KEY"] = open_key(summary.get("key")) or ""
    if track.metadata("year"):
        info["RELEASE_DATE"] = f"{track.metadata('year')}/1/1"
    ET.SubElement(entry, "INFO", info)
    if summary.get("bpm"):
        ET.SubElement(entry, "TEMPO", BPM=f"{summary['bpm']:.6f}",
                      BPM_QUALITY=f"{100.0 * (summary.get('bpm_confidence') or 0.0):.6f}")
    key = musical_key(summary.get("key"))
    if key is not None:
        ET.SubElement(entry, "MUSICAL_KEY", VALUE=str(key))
    for number, start in enumerate(grid_markers(track)):
        ET.SubElement(entry, "CUE_V2", NAME="AutoGrid" if number == 0 else "Grid", DISPL_ORDER="0", TYPE="4",
                      START=f"{start * 1000:.6f}", LEN="0.000000", REPEATS="-1", HOTCUE="-1")
    for section in track.timeline.get("sections") or []:
        ET.SubElement(entry, "CUE_V2", NAME=str(section["label"]), DISPL_ORDER="0", TYPE="0",
                      START=f"{section['start'] * 1000:.6f}", LEN="0.000000", REPEATS="-1", HOTCUE="-1")
    return entry
