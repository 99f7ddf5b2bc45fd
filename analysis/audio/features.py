"""Spectrograms computed once per file and shared between analyses.

The beat/downbeat network reads three log-filtered spectrograms (frame sizes
1024, 2048, 4096 at 100 frames per second) with their positive differences;
the positive difference of the 2048 one is also the spectral-flux onset
function that places transients, so the onset pass costs nothing extra.
The chain is madmom's (same filterbanks, log and difference), computed with
the vectorised STFT of `spectrum.py`; a test holds it equal to madmom's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from madmom.audio.spectrogram import _diff_frames

from .spectrum import log_filtered_spectrogram, log_filterbank

RHYTHM_FPS = 100
FRAME_SIZES = (1024, 2048, 4096)
BANDS_PER_OCTAVE = (3, 6, 12)
ONSET_FRAME_SIZE = 2048
COARSE_FRAME_SIZE = 1024
FMIN, FMAX = 30.0, 17000.0
DIFF_RATIO = 0.5


@dataclass(frozen=True)
class RhythmFeatures:
    """Network input and onset function on one 100 fps clock.

    stacked: np.ndarray [shape=(frames, dims)], the downbeat network's input.
    flux: np.ndarray [shape=(frames,)], summed positive spectral difference.
    coarse: np.ndarray [shape=(frames, dims)], the 1024-sample part (3 bands per octave and their rise), a view
        into the same values: the sound's colour and attack that sections are told apart by.
    register: np.ndarray [shape=(frames, 2)], how much new sound each frame has and how high it sits
        (`onset_register` of the 1024-sample spectrogram): where the bass enters (rhythm.offbeat_phase).
    """

    stacked: np.ndarray
    flux: np.ndarray
    coarse: np.ndarray
    register: np.ndarray
    fps: int = RHYTHM_FPS


def onset_register(spectrum: np.ndarray, log2_frequencies: np.ndarray) -> np.ndarray:
    """Per frame, [rise, rise * log2 frequency]: the linear positive difference of a log10(1 + x) filtered
    spectrogram [shape=(frames, bands)] summed over its bands, and its frequency moment; summed over frames,
    the moment over the rise is the mean pitch height of the new sound there. Linear, not log, magnitudes:
    a faint broadband attack then weighs as little as it sounds next to a bass note."""
    linear = np.power(10.0, spectrum) - 1.0
    rise = np.zeros_like(linear)
    np.maximum(linear[1:] - linear[:-1], 0.0, out=rise[1:])
    return np.stack([rise.sum(axis=1), rise @ log2_frequencies], axis=1)


class RhythmFeatureProcessor:
    """Builds the filterbanks once; call it per signal."""

    def __init__(self, sample_rate: int = 44100) -> None:
        self.sample_rate = sample_rate
        self._filterbanks = {size: log_filterbank(size, sample_rate, bands, FMIN, FMAX)
                             for size, bands in zip(FRAME_SIZES, BANDS_PER_OCTAVE)}
        hop = sample_rate / RHYTHM_FPS
        self._diff_frames = {size: _diff_frames(DIFF_RATIO, hop, size, np.hanning) for size in FRAME_SIZES}
        coarse = self._filterbanks[COARSE_FRAME_SIZE]
        frequencies = np.fft.rfftfreq(COARSE_FRAME_SIZE, 1.0 / sample_rate)[:COARSE_FRAME_SIZE // 2]
        self._coarse_log2_frequencies = np.log2(frequencies @ coarse / coarse.sum(axis=0))

    def _part(self, mono: np.ndarray, size: int) -> np.ndarray:
        spec = log_filtered_spectrogram(mono, size, RHYTHM_FPS, self.sample_rate, self._filterbanks[size])
        lag = self._diff_frames[size]
        diff = np.zeros_like(spec)
        np.maximum(spec[lag:] - spec[:-lag], 0.0, out=diff[lag:])
        return np.hstack([spec, diff])

    def __call__(self, mono: np.ndarray, sample_rate: int) -> RhythmFeatures:
        if sample_rate != self.sample_rate:
            raise ValueError(f"features expect {self.sample_rate} Hz, got {sample_rate} Hz")
        parts = [self._part(mono, size) for size in FRAME_SIZES]
        onset_part = parts[FRAME_SIZES.index(ONSET_FRAME_SIZE)]
        half = onset_part.shape[1] // 2
        coarse = parts[FRAME_SIZES.index(COARSE_FRAME_SIZE)]
        register = onset_register(coarse[:, :coarse.shape[1] // 2], self._coarse_log2_frequencies)
        return RhythmFeatures(stacked=np.hstack(parts), flux=onset_part[:, half:].sum(axis=1), coarse=coarse,
                              register=register)
