"""BPM, key and ReplayGain written into the audio file's own tags, where DJ software and players read them.

Each container's usual fields: ID3 (mp3, wav, aiff) TBPM, TKEY and
TXXX:REPLAYGAIN_TRACK_GAIN; Vorbis comments (flac, ogg) BPM, INITIALKEY and
REPLAYGAIN_TRACK_GAIN (Opus: R128_TRACK_GAIN, the gain Opus players apply);
MP4 tmpo and the iTunes freeform initialkey and replaygain_track_gain atoms.
ID3 TBPM and MP4 tmpo hold whole numbers by their specs; Vorbis BPM keeps
two decimals.

The user's file is never written in place: tags go into a copy beside it,
which is flushed to disk and renamed over the original, so a crash or a
full disk leaves the old file or the new one, never half of either.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .tracks import short_key

KeyNotation = Literal["standard", "camelot", "open_key"]
# ReplayGain 2's reference loudness; the track gain is what brings the song there.
REPLAYGAIN_REFERENCE_LUFS = -18.0
# Opus R128 gains are relative to EBU R128's -23 LUFS, in 1/256 dB (RFC 7845).
OPUS_REFERENCE_LUFS = -23.0


class TagError(Exception):
    """The file cannot be tagged (read-only, folder not writable, not a taggable format); it is left as it was."""


@dataclass(frozen=True)
class TagValues:
    bpm: float | None
    key: str | None
    gain_db: float | None


def tag_values(document: dict[str, Any], *, notation: KeyNotation = "standard",
               replaygain: bool = False) -> TagValues:
    summary = document.get("summary") or {}
    key = short_key(summary.get("key")) if notation == "standard" else _wheel_key(summary, notation)
    lufs = summary.get("loudness_lufs")
    gain = REPLAYGAIN_REFERENCE_LUFS - lufs if replaygain and lufs is not None else None
    return TagValues(summary.get("bpm"), key, gain)


def _wheel_key(summary: dict[str, Any], notation: KeyNotation) -> str | None:
    """Camelot or Open Key: the sidecar's own (summary.key_camelot, key_open), else computed from the key name."""
    given = summary.get("key_camelot" if notation == "camelot" else "key_open")
    if given:
        return given
    from beatwatch.analysis.harmony.notation import camelot, open_key

    return (camelot if notation == "camelot" else open_key)(summary.get("key"))


def file_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the file's bytes: analysis.audio.decode.content_hash's identity, without the numpy that module
    would load into the daemon's supervisor."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_tags(path: str | os.PathLike[str], values: TagValues) -> tuple[str, os.stat_result]:
    """Tag the file through a copy renamed over it; returns the new file's SHA-256 and stat. Raises TagError."""
    from beatwatch.store.sidecar import TAGS_INFIX, create_temp

    path = Path(path)
    if not path.is_file():
        raise TagError(f"{path}: no such file")
    if not os.access(path, os.W_OK):
        raise TagError(f"{path}: the file is read-only; tags not written")
    try:
        temp, fd = create_temp(path.with_name(path.name + TAGS_INFIX + path.suffix))
    except OSError as exc:
        raise TagError(f"{path}: cannot write in its folder ({exc.strerror}); tags not written") from None
    try:
        with open(path, "rb") as source, open(fd, "wb") as copy:
            shutil.copyfileobj(source, copy, 1 << 20)
        original = os.stat(path)
        shutil.copymode(path, temp)
        _keep_owner(temp, original)
        _set(temp, values)
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        digest = file_hash(temp)
        os.replace(temp, path)
        _fsync_folder(path.parent)
    except BaseException as exc:
        temp.unlink(missing_ok=True)
        if isinstance(exc, TagError) or not isinstance(exc, Exception):
            raise
        raise TagError(f"{path}: tags not written ({type(exc).__name__}: {exc}); the file is unchanged") from None
    return digest, os.stat(path)


def _set(temp: Path, values: TagValues) -> None:
    import mutagen
    from mutagen.id3 import ID3FileType
    from mutagen.mp4 import MP4
    from mutagen.oggopus import OggOpus

    audio = mutagen.File(temp)
    if audio is None:
        raise TagError(f"{temp.name}: not a format tags can be written to")
    if isinstance(audio, ID3FileType) or _id3_container(audio):
        _set_id3(audio, values)
    elif isinstance(audio, MP4):
        _set_mp4(audio, values)
    else:
        _set_vorbis(audio, values, opus=isinstance(audio, OggOpus))
    audio.save()


def _id3_container(audio: Any) -> bool:
    """WAV and AIFF carry an ID3 chunk, as mp3 does."""
    from mutagen.aiff import AIFF
    from mutagen.wave import WAVE

    return isinstance(audio, (WAVE, AIFF))


def _set_id3(audio: Any, values: TagValues) -> None:
    from mutagen.id3 import TBPM, TKEY, TXXX

    if audio.tags is None:
        audio.add_tags()
    if values.bpm:
        audio.tags.setall("TBPM", [TBPM(encoding=3, text=[str(round(values.bpm))])])
    if values.key:
        audio.tags.setall("TKEY", [TKEY(encoding=3, text=[values.key])])
    if values.gain_db is not None:
        audio.tags.add(TXXX(encoding=3, desc="REPLAYGAIN_TRACK_GAIN", text=[f"{values.gain_db:.2f} dB"]))


def _set_mp4(audio: Any, values: TagValues) -> None:
    from mutagen.mp4 import MP4FreeForm

    if audio.tags is None:
        audio.add_tags()
    if values.bpm:
        audio.tags["tmpo"] = [round(values.bpm)]
    if values.key:
        audio.tags["----:com.apple.iTunes:initialkey"] = [MP4FreeForm(values.key.encode())]
    if values.gain_db is not None:
        audio.tags["----:com.apple.iTunes:replaygain_track_gain"] = [MP4FreeForm(f"{values.gain_db:.2f} dB".encode())]


def _set_vorbis(audio: Any, values: TagValues, *, opus: bool) -> None:
    if audio.tags is None:
        audio.add_tags()
    if values.bpm:
        audio.tags["BPM"] = f"{values.bpm:.2f}"
    if values.key:
        audio.tags["INITIALKEY"] = values.key
    if values.gain_db is not None:
        if opus:
            opus_gain = values.gain_db + OPUS_REFERENCE_LUFS - REPLAYGAIN_REFERENCE_LUFS
            audio.tags["R128_TRACK_GAIN"] = str(round(opus_gain * 256))
        else:
            audio.tags["REPLAYGAIN_TRACK_GAIN"] = f"{values.gain_db:.2f} dB"


def _keep_owner(temp: Path, original: os.stat_result) -> None:
    """The renamed copy keeps the original's owner where this process may give it (root's daemon may)."""
    if (original.st_uid, original.st_gid) != (os.getuid(), os.getgid()):
        try:
            os.chown(temp, original.st_uid, original.st_gid)
        except PermissionError:
            pass


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
