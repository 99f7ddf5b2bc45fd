"""Tuning: how far a recording sits from A=440, in cents, from where its spectral peaks fall between semitones.

Records are not all tuned to A=440: a band tunes to its piano or to an old
tape, a varispeed master shifts everything, and a chroma that folds
energy onto semitones of A=440 smears a note 40 cents sharp over two of
them. Every sustained note puts peaks at its partials; the lower ones
(octaves, and the twelfth and the major third within a few cents) lie on
the same grid as the note, so the offset from the nearest equal-tempered
semitone that most peak energy shares is the recording's tuning.

Cheap by design, since one number per file is wanted: PEAK_FPS frames a
second of FRAME_SIZE samples (fine enough to place a peak within a cent by
interpolation), peaks refined by a parabola through the log magnitudes,
and each chunk reduced to a 100-bin histogram of deviations (1 cent each,
weighted by the square root of the peak's magnitude, so that the loudest
note does not decide alone). Histograms of consecutive chunks add, so a
3-hour file costs 100 numbers of memory; the estimate is the peak of the
summed histogram smoothed on the circle (+50 cents is -50 cents), refined
by a parabola. The same peaks, folded onto the semitones of the tuning
heard so far, are the pitch classes the key recogniser reads a chord's
notes from (`pitch_classes`: 12 numbers per frame, 2 MB for 3 hours).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

PEAK_FPS = 2
FRAME_SIZE = 16384
# Peaks between these frequencies: below, a frame cannot place them; above, partials stretch and noise dominates.
FMIN, FMAX = 80.0, 4000.0
# A peak counts when within this many dB of its frame's loudest bin.
FLOOR_DB = 40.0
BINS = 100  # 1-cent bins over one semitone
# Smoothing of the histogram: a von Mises kernel of this concentration on the 100-cent circle (about ±6 cents).
KAPPA = 8.0


@dataclass(frozen=True)
class Peaks:
    """Spectral peaks of one stretch of audio: the frame each lies in (PEAK_FPS from the stretch's start,
    `frames` in all), its frequency in Hz and its magnitude."""

    frame: np.ndarray
    frequency: np.ndarray
    magnitude: np.ndarray
    frames: int


def spectral_peaks(mono: np.ndarray, sample_rate: int) -> Peaks:
    """The peaks of PEAK_FPS frames a second; frame k is centred FRAME_SIZE / 2 samples after k / PEAK_FPS,
    and the last frames, too short for FRAME_SIZE, have none."""
    hop = int(round(sample_rate / PEAK_FPS))
    frames = -(-len(mono) // hop)
    if len(mono) < FRAME_SIZE:
        return Peaks(np.zeros(0, dtype=int), np.zeros(0), np.zeros(0), frames)
    windows = sliding_window_view(np.asarray(mono, dtype=np.float32), FRAME_SIZE)[::hop]
    lo, hi = int(FMIN * FRAME_SIZE / sample_rate), int(FMAX * FRAME_SIZE / sample_rate)
    spectrum = scipy.fft.rfft(windows * np.hanning(FRAME_SIZE).astype(np.float32), axis=1)[:, lo - 1:hi + 1]
    log_mag = np.log(np.abs(spectrum) + 1e-9)
    left, centre, right = log_mag[:, :-2], log_mag[:, 1:-1], log_mag[:, 2:]
    floor = log_mag.max(axis=1, keepdims=True) - FLOOR_DB / 20 * np.log(10)
    frame, bin_ = np.nonzero((centre > left) & (centre >= right) & (centre > floor))
    a, c, b = left[frame, bin_], centre[frame, bin_], right[frame, bin_]
    offset = 0.5 * (a - b) / (a - 2 * c + b)  # in bins, within ±0.5 of a strict maximum
    return Peaks(frame=frame, frequency=(bin_ + lo + offset) * sample_rate / FRAME_SIZE,
                 magnitude=np.exp(c - 0.25 * (a - b) * offset), frames=frames)


def deviation_histogram(peaks: Peaks) -> np.ndarray:
    """Weight of the peaks per cent of deviation above the A=440 semitone grid, shape (BINS,).

    Add the histograms of a file's chunks and hand the sum to `tuning_cents`."""
    histogram = np.zeros(BINS)
    cents = (1200 * np.log2(peaks.frequency / 440.0)) % 100
    np.add.at(histogram, np.minimum(cents.astype(int), BINS - 1), np.sqrt(peaks.magnitude))
    return histogram


def pitch_classes(peaks: Peaks, tuning: float) -> np.ndarray:
    """Peak magnitude per frame and pitch class on the semitones of `tuning` cents from A=440, shape
    (peaks.frames, 12), pitch class 0 = A (madmom's chord and key order)."""
    chroma = np.zeros((peaks.frames, 12))
    pitch = np.round(12 * np.log2(peaks.frequency / 440.0) - tuning / 100).astype(int) % 12
    np.add.at(chroma, (peaks.frame, pitch), peaks.magnitude)
    return chroma


def notes_between(chroma: np.ndarray, sample_rate: int) -> Callable[[float, float], np.ndarray]:
    """(start, end) in seconds -> the rows of `chroma` (from `pitch_classes`, chunks joined) summed over the
    frames centred in [start, end), at least one."""
    centre_s = FRAME_SIZE / 2 / sample_rate

    def notes(start: float, end: float) -> np.ndarray:
        lo = max(int(np.ceil((start - centre_s) * PEAK_FPS)), 0)
        return chroma[lo:max(int(np.ceil((end - centre_s) * PEAK_FPS)), lo + 1)].sum(axis=0)
    return notes


def tuning_cents(histogram: np.ndarray) -> float | None:
    """The tuning in cents from A=440, in (-50, 50]; None when the histogram is empty (silence)."""
    if not histogram.sum() > 0:
        return None
    kernel = np.exp(KAPPA * np.cos(2 * np.pi * np.arange(BINS) / BINS))
    density = np.real(np.fft.ifft(np.fft.fft(histogram) * np.fft.fft(kernel)))
    best = int(np.argmax(density))
    a, c, b = density[best - 1], density[best], density[(best + 1) % BINS]
    offset = 0.5 * (a - b) / (a - 2 * c + b) if a - 2 * c + b < 0 else 0.0
    cents = (best + 0.5 + offset) % BINS  # bin k holds deviations [k, k + 1)
    return float(cents - BINS if cents > BINS / 2 else cents)


def tuning_hz(cents: float) -> float:
    """The A that a tuning of `cents` from A=440 puts its concert A at."""
    return 440.0 * 2 ** (cents / 1200)
