"""Spectrograms computed once per file and shared between analyses.

The beat/downbeat network reads three log-filtered spectrograms (frame sizes
1024, 2048, 4096 at 100 frames per second) with their positive differences;
the positive difference of the 2048 one is also the spectral-flux onset
function that places transients, so the onset pass costs nothing extra.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from madmom.audio.signal import FramedSignalProcessor, Signal
from madmom.audio.spectrogram import (
    FilteredSpectrogramProcessor,
    LogarithmicSpectrogramProcessor,
    SpectrogramDifferenceProcessor,
)
from madmom.audio.stft import ShortTimeFourierTransformProcessor
from madmom.processors import SequentialProcessor

FPS = 100
FRAME_SIZES = (1024, 2048, 4096)
BANDS_PER_OCTAVE = (3, 6, 12)
ONSET_FRAME_SIZE = 2048


@dataclass(frozen=True)
class RhythmFeatures:
    """Network input and onset function on one 100 fps clock.

    stacked: np.ndarray [shape=(frames, dims)], the downbeat network's input.
    flux: np.ndarray [shape=(frames,)], summed positive spectral difference.
    """

    stacked: np.ndarray
    flux: np.ndarray
    fps: int = FPS


class RhythmFeatureProcessor:
    """Builds the multi-resolution spectrogram chain once; call it per signal."""

    def __init__(self) -> None:
        self._chains = []
        for frame_size, bands in zip(FRAME_SIZES, BANDS_PER_OCTAVE):
            self._chains.append(SequentialProcessor((
                FramedSignalProcessor(frame_size=frame_size, fps=FPS),
                ShortTimeFourierTransformProcessor(),
                FilteredSpectrogramProcessor(num_bands=bands, fmin=30, fmax=17000, norm_filters=True),
                LogarithmicSpectrogramProcessor(mul=1, add=1),
                SpectrogramDifferenceProcessor(diff_ratio=0.5, positive_diffs=True, stack_diffs=np.hstack),
            )))

    def __call__(self, mono: np.ndarray, sample_rate: int) -> RhythmFeatures:
        signal = Signal(mono, sample_rate=sample_rate, num_channels=1)
        parts = [np.asarray(chain(signal), dtype=np.float32) for chain in self._chains]
        onset_part = parts[FRAME_SIZES.index(ONSET_FRAME_SIZE)]
        half = onset_part.shape[1] // 2
        flux = onset_part[:, half:].sum(axis=1)
        return RhythmFeatures(stacked=np.hstack(parts), flux=flux)
