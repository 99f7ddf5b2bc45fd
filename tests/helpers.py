"""Synthesised audio with known truth, and the encoder the tests make their files with."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 44100


def click_track(bpm: float, *, meter: int = 4, seconds: float = 20.0, lead_in: float = 0.5,
                sr: int = SR) -> tuple[np.ndarray, np.ndarray]:
    """Kick-like clicks on every beat (louder and lower on downbeats) over a soft pad.

    Returns (mono float32 signal, beat times).
    """
    n = int(seconds * sr)
    signal = np.zeros(n)
    beats = np.arange(lead_in, seconds - 0.5, 60.0 / bpm)
    length = int(0.08 * sr)
    t = np.arange(length) / sr
    for i, beat in enumerate(beats):
        start = int(round(beat * sr))
        downbeat = i % meter == 0
        freq, amp = (60.0, 1.0) if downbeat else (180.0, 0.55)
        tone = amp * np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.02)
        noise = 0.3 * amp * np.random.default_rng(i).standard_normal(length) * np.exp(-t / 0.004)
        stop = min(start + length, n)
        signal[start:stop] += (tone + noise)[: stop - start]
    tt = np.arange(n) / sr
    signal += 0.05 * np.sin(2 * np.pi * 220 * tt) * (1 + 0.5 * np.sin(2 * np.pi * 0.25 * tt))
    return (0.5 * signal / np.abs(signal).max()).astype(np.float32), beats


def write_wav(path: Path, signal: np.ndarray, sr: int = SR) -> Path:
    sf.write(str(path), signal, sr, subtype="PCM_16")
    return path


def encode(src: Path, dst: Path, *extra: str) -> Path:
    """Encode with ffmpeg, the same decoder family users' files come from."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *extra, str(dst)], check=True)
    return dst


def lying_wav(path: Path, seconds_held: float, seconds_claimed: float) -> Path:
    """A real WAV whose RIFF and data sizes are patched to claim seconds_claimed over seconds_held of samples."""
    signal_, _ = click_track(120, seconds=seconds_held, lead_in=0.1)
    data = bytearray(write_wav(path, signal_).read_bytes())
    at = data.index(b"data")
    claimed = int(seconds_claimed * 44100) * 2
    data[at + 4:at + 8] = claimed.to_bytes(4, "little")
    data[4:8] = (at + claimed).to_bytes(4, "little")  # RIFF size: everything after its own 8 bytes
    path.write_bytes(bytes(data))
    return path
