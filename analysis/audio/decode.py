"""Decoding: every format goes through one ffmpeg process, once per file.

ffmpeg reads wav, flac, mp3, ogg and m4a alike, resamples to the rate the
networks were trained on, and runs outside this process, so a decoder that
crashes or hangs never takes the analyser with it.

ffmpeg reads only the file itself: the container is named (`-f`, from the
file's first bytes, never guessed by ffmpeg from content that may be a
playlist pointing elsewhere) and only the file protocol is allowed. A caller
that opened the file already (the daemon's worker, after checking what it
opened) hands over that open file, so what is decoded is what was checked,
whatever the name points to by then.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from beatwatch.analysis.errors import DecoderError, InputError

SAMPLE_RATE = 44100
# A decode that yields less than this share of the declared duration is a truncated file.
MIN_DECODED_SHARE = 0.9
TRUNCATION_SLACK_S = 0.5
HASH_BLOCK = 1 << 20
# The delay ffmpeg cannot remove without a header that states it, in the stream's samples: a raw AAC (ADTS)
# stream opens with the encoder's frame of priming for the transform's overlap (1,024; ffmpeg's and FAAC's
# encoders add no more), an MP3 without a LAME header with LAME's 576 samples of encoder delay (the usual
# encoder) and the decoder's 529 of filterbank delay. Left in, every beat lands 23-25 ms late.
PRIMING = {"aac": 1024, "mp3": 576 + 529}
# ffprobe's warning when no header gives the length and it divides the file's size by the first frames' bitrate.
GUESSED_DURATION = b"Estimating duration from bitrate"


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about a file, before any decoding.

    demuxer: ffmpeg's name for the container the file's first bytes show; fd: the open file to decode, when
    the caller opened it (it stays the caller's to close), else the file is opened by `path`; metadata: the
    artist, title, album and year its tags name (`read_metadata`); duration_guessed: ffprobe estimated the
    duration from the bitrate (a raw AAC stream, an MP3 without a Xing or LAME header), so it is no length the
    file declares (a VBR MP3 read 53 s for 36) and neither truncation nor jobs.max_duration_s is judged by it;
    priming: samples (at sample_rate) of encoder and decoder delay at the start that ffmpeg keeps, for lack of
    a header saying how many there are, and the decoder drops.
    """

    path: str
    size: int
    format: str
    duration: float
    sample_rate: int
    channels: int
    demuxer: str | None = None
    fd: int | None = None
    metadata: dict[str, str | int] = field(default_factory=dict, compare=False)
    duration_guessed: bool = False
    priming: int = 0

    @property
    def declared_s(self) -> float:
        """The length the file declares, 0 when it declares none."""
        return 0.0 if self.duration_guessed else self.duration

    @property
    def url(self) -> str:
        """What ffmpeg opens: `file:` always, so a name like `http:x` or `concat:a|b` is only ever a file."""
        return f"file:/dev/fd/{self.fd}" if self.fd is not None else "file:" + self.path


@dataclass(frozen=True)
class Audio:
    """A decoded file: float32 samples at SAMPLE_RATE, shape (n, channels) with channels 1 or 2."""

    info: AudioInfo
    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE

    @property
    def mono(self) -> np.ndarray:
        """Channel average, shape (n,), the signal every analysis but loudness reads."""
        return mono_mix(self.samples)

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def content_hash(path: str | os.PathLike | int) -> str:
    """SHA-256 of the file's bytes: the identity that survives renames and copies. path may be an open file
    (read from its start, its offset left alone)."""
    digest = hashlib.sha256()
    if isinstance(path, int):
        offset = 0
        while block := os.pread(path, HASH_BLOCK, offset):
            digest.update(block)
            offset += len(block)
        return digest.hexdigest()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise DecoderError(f"{name} is not installed (make install puts it there with apt)")
    return found


# What ffmpeg's av_log prints as "?" (its sanitize()): controls but backspace, tab, newlines and carriage return.
_FFMPEG_HIDDEN = re.compile(rb"[\x00-\x07\x0e-\x1f]")


def _stderr_line(stderr: bytes, url: str) -> str:
    """ffmpeg's last message line, without the file's name, which the error we raise names already.

    ffmpeg starts its messages with the name as given, newlines included, so
    the last line of a name holding one would otherwise pass for the reason.
    """
    shown = _FFMPEG_HIDDEN.sub(b"?", os.fsencode(url))
    text = stderr.replace(shown + b": ", b"").decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def probe(path: str | os.PathLike, *, fd: int | None = None) -> AudioInfo:
    """Read format, duration, rate and channels of the first audio stream, or raise InputError.

    fd: the file, opened by the caller, to read instead of opening `path` (which then only names it).
    """
    path = Path(path)
    if fd is None:
        if not path.exists():
            raise InputError(f"{path}: no such file")
        # Non-blocking, so a FIFO cannot hold the open; fstat then refuses anything but a regular file.
        own = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            return replace(probe(path, fd=own), fd=None)
        finally:
            os.close(own)
    meta = os.fstat(fd)
    if not stat.S_ISREG(meta.st_mode):
        raise InputError(f"{path}: not a regular file")
    size = meta.st_size
    if size == 0:
        raise InputError(f"{path}: empty file")
    demuxer = sniff(os.pread(fd, SNIFF_BYTES, 0))
    if demuxer is None:
        raise InputError(f"{path}: not an audio file (no audio container starts it)")
    url = f"file:/dev/fd/{fd}"
    result = subprocess.run(
        [_tool("ffprobe"), "-v", "warning", "-protocol_whitelist", "file", "-f", demuxer, "-print_format", "json",
         "-show_format", "-show_streams", "-select_streams", "a:0", "--", url],
        capture_output=True, timeout=60, check=False, pass_fds=(fd,),
    )
    if result.returncode != 0:
        raise InputError(f"{path}: not an audio file ({_stderr_line(result.stderr, url)})")
    meta = json.loads(result.stdout or b"{}")
    streams = meta.get("streams") or []
    if not streams:
        raise InputError(f"{path}: not an audio file (no audio stream)")
    stream, container = streams[0], meta.get("format", {})
    duration = float(stream.get("duration") or container.get("duration") or 0.0)
    declared = _wav_declared(fd, size) if demuxer == "wav" else None
    # ffmpeg reports where it starts an MP3 whose LAME header gave the delay (0.025 s); it has none to go by where
    # it starts at 0, and an ADTS stream has no start at all.
    delayed = demuxer == "aac" or (demuxer == "mp3" and float(stream.get("start_time") or 0.0) == 0.0)
    if declared is not None:
        _check_length(str(path), declared.data_bytes / declared.byte_rate, declared.held_bytes / declared.byte_rate)
    return AudioInfo(
        path=str(path),
        size=size,
        format=_format_name(path, container.get("format_name", "")),
        duration=duration,
        sample_rate=int(stream.get("sample_rate") or 0),
        channels=int(stream.get("channels") or 0),
        demuxer=demuxer,
        fd=fd,
        metadata=read_metadata(container.get("tags") or {}, stream.get("tags") or {}),
        duration_guessed=GUESSED_DURATION in result.stderr,
        priming=PRIMING[demuxer] if delayed else 0,
    )


# ffprobe's tag names per field, as ID3 (via ffmpeg), Vorbis comments, MP4 and RIFF INFO give them; any case.
_TAG_NAMES = {"artist": ("artist", "album_artist"), "title": ("title",), "album": ("album",),
              "year": ("date", "year", "originaldate", "tdrc", "tyer")}
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")


def read_metadata(*tag_sets: dict[str, str]) -> dict[str, str | int]:
    """Artist, title, album and year from the container's tags (then the stream's: Ogg keeps them there), so
    a query can name what it finds. Only what is present; the year as an int, from a date such as 2019-04-01."""
    tags: dict[str, str] = {}
    for tag_set in tag_sets:
        for name, value in tag_set.items():
            tags.setdefault(name.lower(), str(value).strip())
    found: dict[str, str | int] = {}
    for field_name, names in _TAG_NAMES.items():
        given = next((tags[name] for name in names if tags.get(name)), None)
        if given is None:
            continue
        if field_name == "year":
            year = _YEAR.search(given)
            if year:
                found["year"] = int(year.group(1))
        else:
            found[field_name] = given
    return found


# Enough of the start for every signature below, an ID3 tag's header included.
SNIFF_BYTES = 64


def sniff(head: bytes) -> str | None:
    """ffmpeg's demuxer for the container these first bytes start, None when they start none we read.

    Named explicitly rather than left to ffmpeg's probing, which would also
    take an HLS or concat playlist named `x.wav` and read the files it lists.
    An ID3 tag (mp3, sometimes aac or flac) is skipped to what follows it, when
    it fits in `head`; a longer one is taken to precede mp3, its usual host.
    """
    if head[:3] == b"ID3" and len(head) >= 10:
        tag = 10 + (head[6] << 21 | head[7] << 14 | head[8] << 7 | head[9])
        return (sniff(head[tag:]) if len(head) > tag + 4 else None) or "mp3"
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[4:8] == b"ftyp":
        return "mov"
    signatures = {b"fLaC": "flac", b"OggS": "ogg", b"\x30\x26\xb2\x75": "asf"}
    if head[:4] in signatures:
        return signatures[head[:4]]
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # an MPEG audio frame's sync word
        return "aac" if head[1] & 0x06 == 0 else "mp3"  # layer bits 00: an ADTS (AAC) header
    return None


@dataclass(frozen=True)
class _WavData:
    """What a RIFF/RF64 WAV header says its data chunk holds, and how much of it the file really has."""

    data_bytes: int
    held_bytes: int
    byte_rate: int


# A data size a writer leaves when it cannot seek back (a pipe): "until the end of the file", not a length.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


def _wav_declared(fd: int, file_size: int) -> _WavData | None:
    """The data chunk's declared size, read from the header; None when the header declares none.

    ffprobe estimates a WAV's duration from the file's size, so a header that
    claims ten hours over one second of samples looks like a one-second clip
    to it, and only the header itself can tell the file is cut short.
    """
    head = os.pread(fd, 12, 0)
    if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in (b"RIFF", b"RF64", b"BW64"):
        return None
    at, byte_rate, ds64_data = 12, 0, None
    while len(header := os.pread(fd, 8, at)) == 8:
        chunk_id, size = header[:4], struct.unpack("<I", header[4:])[0]
        at += 8
        if chunk_id == b"data":
            if ds64_data is not None and size == 0xFFFFFFFF:
                size = ds64_data
            if size in _UNKNOWN_SIZES or byte_rate <= 0:
                return None
            return _WavData(data_bytes=size, held_bytes=file_size - at, byte_rate=byte_rate)
        body = os.pread(fd, min(size, 64), at)
        if chunk_id == b"fmt " and len(body) >= 12:
            byte_rate = struct.unpack("<I", body[8:12])[0]
        elif chunk_id == b"ds64" and len(body) >= 16:
            ds64_data = struct.unpack("<Q", body[8:16])[0]
        at += size + size % 2
    return None


def _format_name(path: Path, ffmpeg_names: str) -> str:
    """The user's word for the format: the extension when ffmpeg agrees, else ffmpeg's first name."""
    ext = path.suffix.lower().lstrip(".")
    names = ffmpeg_names.split(",")
    aliases = {"m4a": "mov", "aac": "aac", "oga": "ogg", "opus": "ogg", "aif": "aiff"}
    if ext and (ext in names or aliases.get(ext) in names):
        return ext
    return names[0] if names and names[0] else ext


@dataclass(frozen=True)
class Chunk:
    """A stretch of decoded audio with margins: samples[core_start:core_end] is this chunk's own part.

    `offset` is the file position (in samples) of samples[0]; cores of
    consecutive chunks tile the file without gap or overlap, margins give
    analyses with context (a BLSTM, an STFT frame) the same view as the whole file.
    """

    offset: int
    samples: np.ndarray
    core_start: int
    core_end: int

    @property
    def mono(self) -> np.ndarray:
        return mono_mix(self.samples)


def mono_mix(samples: np.ndarray) -> np.ndarray:
    """(n, channels) -> (n,) float32 channel average; a mono signal is returned as a view, not copied."""
    if samples.shape[1] == 1:
        return samples[:, 0]
    # The decoder gives at most two channels: the same float32 sums as mean(axis=1), five times faster than
    # numpy's reduction across a row.
    mixed = samples[:, 0] + samples[:, 1]
    mixed /= np.float32(2)
    return mixed


def _channels(info: AudioInfo) -> int:
    return 1 if info.channels == 1 else 2


def _decoder(info: AudioInfo) -> list[str]:
    named = ["-f", info.demuxer] if info.demuxer else []
    trim = ["-af", f"atrim=start_sample={info.priming}"] if info.priming else []
    return [_tool("ffmpeg"), "-v", "error", "-nostdin", "-protocol_whitelist", "file", *named, "-i", info.url,
            "-map", "0:a:0", *trim, "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(_channels(info)),
            "-ar", str(SAMPLE_RATE), "-"]


def _passed_fds(info: AudioInfo) -> tuple[int, ...]:
    return (info.fd,) if info.fd is not None else ()


def _check_length(path: str, declared_s: float, decoded_s: float) -> None:
    """The one truncation rule, for what ffmpeg decoded and for what a WAV header declares against what it holds."""
    if declared_s > 0 and decoded_s < MIN_DECODED_SHARE * declared_s - TRUNCATION_SLACK_S:
        raise InputError(f"{path}: truncated or corrupt ({decoded_s:.1f} s of audio, {declared_s:.1f} s declared)")
    if decoded_s == 0:
        raise InputError(f"{path}: no audio samples could be decoded")


def stream(info: AudioInfo, *, chunk_s: float, margin_s: float,
           max_duration_s: float | None = None) -> Iterator[Chunk]:
    """Decode in chunks of chunk_s seconds (plus margin_s either side) with memory bounded by one chunk.

    The whole file is still decoded by one ffmpeg process, read as it goes.
    Decoding stops with an InputError once it passes max_duration_s, whatever
    the header declared: a FLAC may claim 10 s over hours of samples.
    """
    channels = _channels(info)
    chunk, margin = int(chunk_s * SAMPLE_RATE), int(margin_s * SAMPLE_RATE)
    limit = int(max_duration_s * SAMPLE_RATE) if max_duration_s is not None else None
    frame_bytes = 4 * channels
    process = subprocess.Popen(_decoder(info), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               pass_fds=_passed_fds(info))
    assert process.stdout is not None  # a PIPE, as asked one line above
    buffer = np.zeros((0, channels), dtype=np.float32)
    buffer_offset, core, total, ended = 0, 0, 0, False
    try:
        while True:
            need = core + chunk + margin
            while not ended and (have := buffer_offset + len(buffer)) < need:
                if limit is not None and have > limit:
                    raise InputError(f"{info.path}: longer than jobs.max_duration_s = {max_duration_s:g} s "
                                     f"(decoding stopped there), though its header declares {info.duration:.0f} s")
                # Never read past the limit's first frame: a lying header must not make us decode hours.
                want = need - have if limit is None else min(need - have, limit + 1 - have)
                data = process.stdout.read(want * frame_bytes)
                if not data:
                    ended = True
                    break
                data = data[: len(data) - len(data) % frame_bytes]
                buffer = np.concatenate([buffer, np.frombuffer(data, dtype=np.float32).reshape(-1, channels)])
            total = buffer_offset + len(buffer)
            core_end = min(core + chunk, total)
            last = ended and core_end >= total
            if last:
                _finish(process, info)
                _check_length(info.path, info.declared_s, total / SAMPLE_RATE)
                if core_end <= core and core > 0:  # the previous chunk ended exactly at the end of the file
                    return
            yield Chunk(offset=buffer_offset, samples=buffer, core_start=core - buffer_offset,
                        core_end=core_end - buffer_offset)
            if last:
                return
            core = core_end
            drop = max(core - margin - buffer_offset, 0)
            buffer, buffer_offset = buffer[drop:], buffer_offset + drop
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def _finish(process: subprocess.Popen, info: AudioInfo) -> None:
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise InputError(f"{info.path}: cannot decode ({_stderr_line(stderr, info.url)})")


def decode(info: AudioInfo) -> Audio:
    """Decode the whole file to float32 at SAMPLE_RATE, keeping mono as mono and folding more channels to stereo."""
    channels = _channels(info)
    result = subprocess.run(_decoder(info), capture_output=True, check=False, pass_fds=_passed_fds(info))
    if result.returncode != 0:
        raise InputError(f"{info.path}: cannot decode ({_stderr_line(result.stderr, info.url)})")
    samples = np.frombuffer(result.stdout, dtype=np.float32)
    samples = samples[: len(samples) - len(samples) % channels].reshape(-1, channels)
    _check_length(info.path, info.declared_s, len(samples) / SAMPLE_RATE)
    return Audio(info=info, samples=samples)


def resample(mono: np.ndarray, sample_rate: float, target_rate: float) -> np.ndarray:
    """A mono signal at another rate (the tag models' 16 kHz, the chroma's 5512.5 Hz), float32."""
    if sample_rate == target_rate:
        return np.ascontiguousarray(mono, dtype=np.float32)
    import soxr

    return soxr.resample(mono, sample_rate, target_rate).astype(np.float32, copy=False)
