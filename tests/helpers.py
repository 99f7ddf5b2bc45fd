"""Synthesised audio with known truth, and the encoder the tests make their files with."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mido
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


# (label, bars, chord roots as MIDI notes with "m" for minor, drums, brightness, level) per section of form_song.
FORM = (
    ("intro", 4, ("A3m", "F3", "A3m", "F3"), False, 0.2, 0.25),
    ("verse", 8, ("A3m", "F3", "C3", "G3"), True, 0.4, 0.45),
    ("chorus", 8, ("F3", "G3", "C4", "C4"), True, 1.0, 0.9),
    ("verse", 8, ("A3m", "F3", "C3", "G3"), True, 0.4, 0.45),
    ("chorus", 8, ("F3", "G3", "C4", "C4"), True, 1.0, 0.9),
    ("outro", 4, ("D3m", "D3m", "E3", "E3"), False, 0.2, 0.3),
)


def form_song(bpm: float = 120.0, *, lead_in: float = 0.5, form=FORM, sr: int = SR) -> tuple[np.ndarray, list[dict]]:
    """A 4/4 song whose sections differ as records' do: their own chord loop (one chord a bar), drums or none,
    a darker or brighter sound and their own level.

    Returns (mono float32 signal, sections as {"label", "bar" (1-based), "bars", "start", "end"}).
    """
    beat = 60.0 / bpm
    total_bars = sum(bars for _l, bars, *_ in form)
    n = int((lead_in + total_bars * 4 * beat + 1.0) * sr)
    signal = np.zeros(n)
    rng = np.random.default_rng(3)
    truth = []
    bar = 0
    for label, bars, chords, drums, bright, level in form:
        truth.append({"label": label, "bar": bar + 1, "bars": bars, "start": lead_in + bar * 4 * beat,
                      "end": lead_in + (bar + bars) * 4 * beat})
        for b in range(bars):
            start = lead_in + (bar + b) * 4 * beat
            i0, i1 = int(start * sr), int((start + 4 * beat) * sr)
            t = np.arange(i1 - i0) / sr
            name = chords[b % len(chords)]
            root = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[name[0]] + 12 * (int(name[1]) + 1)
            notes = (root, root + (3 if name.endswith("m") else 4), root + 7, root - 12)
            tone = np.zeros_like(t)
            for note in notes:
                freq = 440.0 * 2 ** ((note - 69) / 12)
                for h in range(1, 8):
                    tone += (bright ** (h - 1)) / h * np.sin(2 * np.pi * freq * h * t)
            envelope = np.minimum(1.0, t / 0.02) * np.exp(-t / 3.0)
            piece = 0.12 * level * tone * envelope
            if drums:
                for k in range(8):
                    at = int(k * beat / 2 * sr)
                    hit = np.arange(min(int(0.12 * sr), len(t) - at)) / sr
                    noise = rng.standard_normal(len(hit))
                    hat = 0.08 * np.diff(noise, prepend=0.0) * np.exp(-hit / 0.01)
                    drum = hat
                    if k % 2 == 0:
                        drum = drum + (np.sin(2 * np.pi * 55.0 * hit) * np.exp(-hit / 0.06) if k % 4 == 0
                                       else 0.5 * noise * np.exp(-hit / 0.05))
                    piece[at:at + len(hit)] += level * drum
            else:
                pulse = np.zeros_like(t)
                for k in range(4):
                    at = int(k * beat * sr)
                    hit = np.arange(min(int(0.05 * sr), len(t) - at)) / sr
                    accent = 0.6 if k == 0 else 0.3
                    pulse[at:at + len(hit)] += accent * np.sin(2 * np.pi * 80.0 * hit) * np.exp(-hit / 0.02)
                piece += level * pulse
            signal[i0:i1] += piece
        bar += bars
    return (0.8 * signal / np.abs(signal).max()).astype(np.float32), truth


def drum_loop(bpm: float, *, kicks: tuple[float, ...], snares: tuple[float, ...], seconds: float = 16.0,
              lead_in: float = 0.5, sr: int = SR) -> tuple[np.ndarray, np.ndarray]:
    """A 4/4 drum loop: kicks and snares at these beat positions (0 to 4) in every bar, closed hats on every
    eighth, over a soft bass note. Returns (mono float32 signal, beat times)."""
    n = int(seconds * sr)
    signal = np.zeros(n)
    beat = 60.0 / bpm
    rng = np.random.default_rng(7)
    hit = np.arange(int(0.15 * sr)) / sr
    sounds = {
        "kick": np.sin(2 * np.pi * (50.0 + 80.0 * np.exp(-hit / 0.01)) * hit) * np.exp(-hit / 0.08),
        "snare": 0.7 * rng.standard_normal(len(hit)) * np.exp(-hit / 0.05) + 0.3 * np.sin(2 * np.pi * 190 * hit),
        "hat": 0.15 * np.diff(rng.standard_normal(len(hit)), prepend=0.0) * np.exp(-hit / 0.01),
    }
    bars = int((seconds - lead_in) / (4 * beat))
    hats = tuple(k / 2 for k in range(8))
    for bar in range(bars):
        for name, positions in (("kick", kicks), ("snare", snares), ("hat", hats)):
            for position in positions:
                start = int(round((lead_in + (bar * 4 + position) * beat) * sr))
                stop = min(start + len(hit), n)
                signal[start:stop] += sounds[name][:stop - start]
    t = np.arange(n) / sr
    signal += 0.05 * np.sin(2 * np.pi * 55.0 * t)
    beats = lead_in + np.arange(bars * 4) * beat
    return (0.6 * signal / np.abs(signal).max()).astype(np.float32), beats


def save_midi(path: Path, track: mido.MidiTrack, events: list[tuple[int, int, mido.Message]], ticks: int) -> None:
    """(tick, order, message) events, sorted (note-offs before note-ons at one tick by `order`), appended to
    `track` in delta time and saved as a one-track file."""
    now = 0
    for tick, _order, message in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    midi = mido.MidiFile(ticks_per_beat=ticks)
    midi.tracks.append(track)
    midi.save(path)
