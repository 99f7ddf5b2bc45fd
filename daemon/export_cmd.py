"""`beatwatch export`: analysed tracks, chosen by path, hash or a WHERE clause, written for DJ and MIR tools.

The exporters (render/) turn sidecars into bytes; this module picks the
tracks, and writes each output through a temp file and a rename, so a DJ
library file is never left half-written for the DJ software to import.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from beatwatch.render.tracks import Track
from beatwatch.store.sidecar import SUFFIX, create_temp

from .library_paths import Library, audio_of_sidecar

# Formats whose output is one file for all tracks; the others write files per track into a folder.
COLLECTION_FORMATS = ("rekordbox", "traktor")
FOLDER_FORMATS = ("jams", "labels", "lab")
FORMATS = COLLECTION_FORMATS + FOLDER_FORMATS


class ExportError(Exception):
    """A track cannot be found or read, or the output cannot be written: exit code 1."""


def select_tracks(engine: Engine, targets: list[str], where: str | None,
                  library: Library | None = None) -> list[Track]:
    """Tracks named by path, hash or sidecar file (in the order given), then those the WHERE clause selects;
    each once, at the paths this host's library mounts give them."""
    library = library or Library()
    from beatwatch.store.records import BadFilter, find_analysis, tracks_where

    rows: list[tuple[str, str | None]] = []
    for target in targets:
        if target.endswith(SUFFIX) and Path(target).is_file():  # a sidecar itself, as `plot` and `click` take
            document = _read_sidecar(target, target)
            rows.append((str(audio_of_sidecar(Path(target), document["file"]["path"])), target))
            continue
        try:
            found = find_analysis(engine, library.lookup_name(target))
        except LookupError as exc:
            raise ExportError(f"{target}: {exc}") from None
        if found is None:
            raise ExportError(f"{target}: no analysed track with this path or hash")
        found = library.localised(found)
        rows.append((found["path"], found["sidecar_path"]))
    if where is not None:
        try:
            rows += [(row["path"], row["sidecar_path"]) for row in map(library.localised, tracks_where(engine, where))]
        except BadFilter as exc:
            raise ExportError(str(exc)) from None
    tracks, seen = [], set()
    for path, sidecar in rows:
        if path not in seen:
            seen.add(path)
            tracks.append(Track(_read_sidecar(path, sidecar), path))
    return tracks


def _read_sidecar(path: str, sidecar: str | None) -> dict:
    try:
        return json.loads(Path(sidecar or "").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}: cannot read its sidecar {sidecar} ({exc})") from None


def export(tracks: list[Track], fmt: str, out: Path) -> list[Path]:
    """Write the export; returns the files written."""
    if fmt in COLLECTION_FORMATS:
        if out.is_dir():
            raise ExportError(f"{out} is a folder; --format {fmt} writes one file, give its name")
        return [_write(out, _collection_writer(fmt)(tracks))]
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file; --format {fmt} writes one file per track into a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the folder {out} ({exc.strerror})") from None
    names = Counter(track.name for track in tracks)
    written = []
    for track in tracks:
        # Two files of one name from different folders: each keeps its own, told apart by its content's hash.
        stem = track.name if names[track.name] == 1 else f"{track.name}.{track.document['file']['content_hash'][:8]}"
        for suffix, data in _per_track(fmt, track):
            written.append(_write(out / (stem + suffix), data))
    return written


def _collection_writer(fmt: str) -> Callable[[list[Track]], bytes]:
    from beatwatch.render.rekordbox import rekordbox_xml
    from beatwatch.render.traktor import traktor_nml

    return rekordbox_xml if fmt == "rekordbox" else traktor_nml


def _per_track(fmt: str, track: Track) -> list[tuple[str, bytes]]:
    from beatwatch.render.jams_file import jams_document
    from beatwatch.render.labels import LAYERS, chord_lab, label_track

    if fmt == "jams":
        return [(".jams", json.dumps(jams_document(track), indent=1, ensure_ascii=False).encode())]
    if fmt == "lab":
        return [(".lab", chord_lab(track).encode())]
    return [(f".{layer}.txt", label_track(track, layer).encode()) for layer in LAYERS]


def write_playlist(engine: Engine, where: str, out: Path, *, harmonic: bool, tempo_percent: float,
                   library: Library | None = None) -> int:
    """The M3U of the tracks the clause selects that are on disk now, at this host's paths; returns how many it
    lists."""
    library = library or Library()
    from beatwatch.render.playlist import Entry, harmonic_order, m3u
    from beatwatch.store.records import BadFilter, tracks_where

    try:
        # A track in a library this host does not mount is not on this host's disk.
        rows = [library.localised(row) for row in tracks_where(engine, where)
                if library.local_or_none(row["path"]) is not None]
    except BadFilter as exc:
        raise ExportError(str(exc)) from None
    entries = [Entry(row["path"], row["duration"], row["bpm"], row["key"], row.get("artist"), row.get("title"))
               for row in rows if not row["missing"]]
    if not entries:
        raise ExportError(f"no analysed track on disk matches {where!r}; nothing written")
    if harmonic:
        entries = harmonic_order(entries, tempo_percent)
    _write(out, m3u(entries, out).encode())
    return len(entries)


def _write(path: Path, data: bytes) -> Path:
    try:
        temp, fd = create_temp(path)
    except OSError as exc:
        raise ExportError(f"cannot write {path} ({exc.strerror})") from None
    try:
        with open(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise ExportError(f"cannot write {path} ({exc.strerror})") from None
    return path
