"""Pitch-class energy of the low and the upper register, for naming what the majmin chord CNN cannot.

madmom's chord CNN and CRF know only major and minor triads, and their
spectrogram (FFT bins wider than a semitone below 300 Hz) cannot say which
note the bass plays. A seventh, a suspension or an inversion is a matter
of which pitch classes sound, so each chord is re-read from a chroma: the
signal is decimated to RATE (chroma needs nothing above 2.7 kHz), which
makes a 0.74 s frame cheap enough to resolve semitones down to the bass
range, and each frame's spectrum is summed onto semitones. The bass and the
upper register are kept apart (`BASS`, `TREBLE`): the bass names the
inversion, the upper register the quality.

Detuned recordings would smear every note over two semitone filters, so the
filters are centred on the recording's own tuning: the one estimate of
`tuning.py` (the chord CNN's and the key CNN's bands follow the same
number), the filterbank rebuilt only when that estimate moves by a cent.
Cost: one decimation and one small STFT per chunk, about 1 % of the
analysis time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from beatwatch.analysis.audio.decode import resample
from beatwatch.analysis.audio.spectrum import magnitude_spectrogram

DECIMATE = 8
# The bass needs 0.74 s frames (1.35 Hz bins: under half a semitone from 41 Hz up); the upper register
# resolves semitones with half that, and follows chord changes at fast tempi better for it.
BASS_FRAME, TREBLE_FRAME = 4096, 2048
# MIDI pitch ranges [low, high): the bass from A1, the upper register from C3 to C7.
BASS = (33, 57)
TREBLE = (48, 96)
# A bin feeds a semitone when it lies within this many semitones of its centre (cos² taper).
HALF_WIDTH = 0.5


@dataclass(frozen=True)
class Chroma:
    """Per-frame pitch-class energy [shape=(frames, 12)] of each register, pitch class 0 = C."""

    bass: np.ndarray
    treble: np.ndarray

    @staticmethod
    def concatenate(parts: list[Chroma]) -> Chroma:
        if not parts:
            return Chroma(np.zeros((0, 12)), np.zeros((0, 12)))
        return Chroma(np.concatenate([p.bass for p in parts]), np.concatenate([p.treble for p in parts]))


class ChromaProcessor:
    """The semitone filterbanks, built for a tuning (to the cent); `__call__` turns mono audio into a Chroma
    at `fps`."""

    def __init__(self, sample_rate: int, fps: int) -> None:
        self.sample_rate, self.fps = sample_rate, fps
        self._rate = sample_rate / DECIMATE
        self._cents: int | None = None
        self._banks = (np.zeros((0, 12)), np.zeros((0, 12)))

    def __call__(self, mono: np.ndarray, tuning_cents: float = 0.0) -> Chroma:
        """tuning_cents: the recording's tuning from A=440 (`tuning.tuning_cents`)."""
        bass, treble = self._bank(tuning_cents)
        low = resample(mono, self.sample_rate, self._rate)
        frames = -(-len(mono) * self.fps // self.sample_rate)  # the chord CNN's frame count for this signal
        return Chroma(bass=self._register(low, BASS_FRAME, bass, frames),
                      treble=self._register(low, TREBLE_FRAME, treble, frames))

    def _bank(self, tuning_cents: float) -> tuple[np.ndarray, np.ndarray]:
        """The (bass, treble) filterbanks at the nearest cent, kept while a file's chunks agree on it."""
        cents = int(round(tuning_cents))
        if cents != self._cents:
            self._cents, self._banks = cents, (
                _filterbank(np.arange(BASS_FRAME // 2) * self._rate / BASS_FRAME, BASS, cents),
                _filterbank(np.arange(TREBLE_FRAME // 2) * self._rate / TREBLE_FRAME, TREBLE, cents))
        return self._banks

    def _register(self, low: np.ndarray, frame_size: int, bank: np.ndarray, frames: int) -> np.ndarray:
        return _fit(magnitude_spectrogram(low, frame_size, self.fps, self._rate), frames) @ bank  # type: ignore[arg-type]


def _filterbank(frequencies: np.ndarray, pitches: tuple[int, int], cents: float) -> np.ndarray:
    """Weights [shape=(bins, 12)]: bin energy onto pitch classes whose semitones sit `cents` from A=440."""
    midi = 69.0 + 12.0 * np.log2(np.maximum(frequencies, 1.0) / 440.0)  # the DC bin lands far below any pitch
    bank = np.zeros((len(frequencies), 12), dtype=np.float32)
    for pitch in range(*pitches):
        distance = np.abs(midi - pitch - cents / 100.0)
        weight = np.where(distance < HALF_WIDTH, np.cos(np.pi / 2 * distance / HALF_WIDTH) ** 2, 0.0)
        bank[:, pitch % 12] += weight
    return bank


def _fit(spec: np.ndarray, frames: int) -> np.ndarray:
    """Trim or zero-pad to exactly `frames` rows (decimation may round the signal's length)."""
    if len(spec) >= frames:
        return spec[:frames]
    return np.concatenate([spec, np.zeros((frames - len(spec), spec.shape[1]), dtype=spec.dtype)])
