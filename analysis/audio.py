"""Decoding: every format goes through one ffmpeg process, once per file.

ffmpeg reads wav, flac, mp3, ogg and m4a alike, resamples to the rate the
networks were trained on, and runs outside this process, so a decoder that
crashes or hangs never takes the analyser with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DecoderError, InputError

SAMPLE_RATE = 44100
# Names the daemon and `analyze FOLDER` treat as music; anything else in a folder is left alone.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".wma"})
# A decode that yields less than this share of the declared duration is a truncated file.
MIN_DECODED_SHARE = 0.9
TRUNCATION_SLACK_S = 0.5
HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about a file, before any decoding."""

    path: str
    size: int
    format: str
    duration: float
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class Audio:
    """A decoded file: float32 samples at SAMPLE_RATE, shape (n, channels) with channels 1 or 2."""

    info: AudioInfo
    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE

    @property
    def mono(self) -> np.ndarray:
        """Channel average, shape (n,), the signal every analysis but loudness reads."""
        if self.samples.shape[1] == 1:
            return self.samples[:, 0]
        return self.samples.mean(axis=1, dtype=np.float32)

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def content_hash(path: str | os.PathLike) -> str:
    """SHA-256 of the file's bytes: the identity that survives renames and copies."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise DecoderError(f"{name} is not installed (make install puts it there with apt)")
    return found


def _stderr_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def probe(path: str | os.PathLike) -> AudioInfo:
    """Read format, duration, rate and channels of the first audio stream, or raise InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path}: empty file")
    result = subprocess.run(
        [_tool("ffprobe"), "-v", "error", "-print_format", "json", "-show_format",
         "-show_streams", "-select_streams", "a:0", "--", str(path)],
        capture_output=True, timeout=60, check=False,
    )
    if result.returncode != 0:
        raise InputError(f"{path}: not an audio file ({_stderr_line(result.stderr)})")
    meta = json.loads(result.stdout or b"{}")
    streams = meta.get("streams") or []
    if not streams:
        raise InputError(f"{path}: not an audio file (no audio stream)")
    stream, container = streams[0], meta.get("format", {})
    duration = float(stream.get("duration") or container.get("duration") or 0.0)
    return AudioInfo(
        path=str(path),
        size=size,
        format=_format_name(path, container.get("format_name", "")),
        duration=duration,
        sample_rate=int(stream.get("sample_rate") or 0),
        channels=int(stream.get("channels") or 0),
    )


def _format_name(path: Path, ffmpeg_names: str) -> str:
    """The user's word for the format: the extension when ffmpeg agrees, else ffmpeg's first name."""
    ext = path.suffix.lower().lstrip(".")
    names = ffmpeg_names.split(",")
    aliases = {"m4a": "mov", "aac": "aac", "oga": "ogg", "opus": "ogg", "aif": "aiff"}
    if ext and (ext in names or aliases.get(ext) in names):
        return ext
    return names[0] if names and names[0] else ext


def decode(info: AudioInfo) -> Audio:
    """Decode the whole file to float32 at SAMPLE_RATE, keeping mono as mono and folding more channels to stereo."""
    channels = 1 if info.channels == 1 else 2
    result = subprocess.run(
        [_tool("ffmpeg"), "-v", "error", "-nostdin", "-i", info.path, "-map", "0:a:0",
         "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(channels), "-ar", str(SAMPLE_RATE), "-"],
        capture_output=True, check=False,
    )
    if result.returncode != 0:
        raise InputError(f"{info.path}: cannot decode ({_stderr_line(result.stderr)})")
    samples = np.frombuffer(result.stdout, dtype=np.float32)
    samples = samples[: len(samples) - len(samples) % channels].reshape(-1, channels)
    audio = Audio(info=info, samples=samples)
    if info.duration > 0 and audio.duration < MIN_DECODED_SHARE * info.duration - TRUNCATION_SLACK_S:
        raise InputError(
            f"{info.path}: truncated or corrupt (decoded {audio.duration:.1f} s of {info.duration:.1f} s declared)"
        )
    if len(samples) == 0:
        raise InputError(f"{info.path}: no audio samples could be decoded")
    return audio
