"""Vectorised STFT magnitudes that reproduce madmom's, frame for frame.

madmom's `stft` computes one complex FFT per frame in a Python loop, which
was the single largest cost of feature extraction. Here frames are cut as
strided views and transformed in blocks with a real FFT: same framing (frame
i centred on sample int(i * hop)), same Hann window, same bins (Nyquist
dropped), so the networks see identical input. Blocks bound the memory of a
long file to one block of frames; applying a filterbank per block means
the unfiltered magnitudes of the whole file never exist at once, only the
few bands the networks read.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from madmom.audio.filters import LogarithmicFilterbank
from madmom.audio.stft import fft_frequencies
from numpy.lib.stride_tricks import sliding_window_view

# Samples windowed and transformed at once: a block's buffers stay near 10 MB whatever the frame size,
# where a fixed count of frames would grow with it (8192-sample frames are the chord and key networks').
# Larger blocks measured no faster.
BLOCK_SAMPLES = 1 << 20


def num_frames(n_samples: int, hop: float) -> int:
    """madmom's count for end='normal': a frame for every hop that starts inside the signal."""
    return int(np.ceil(n_samples / hop))


def magnitude_spectrogram(signal: np.ndarray, frame_size: int, fps: float, sample_rate: int) -> np.ndarray:
    """|STFT| [shape=(frames, frame_size // 2)] float32 of a mono float signal, madmom framing."""
    return _spectrogram(signal, frame_size, fps, sample_rate, None)


def filtered_spectrogram(signal: np.ndarray, frame_size: int, fps: float, sample_rate: int,
                         filterbank: np.ndarray) -> np.ndarray:
    """|STFT| @ filterbank [shape=(frames, bands)] float32, filtered block by block so that only the
    bands of the whole signal are ever held."""
    return _spectrogram(signal, frame_size, fps, sample_rate, np.ascontiguousarray(filterbank, dtype=np.float32))


def log_filterbank(frame_size: int, sample_rate: int, num_bands: int, fmin: float, fmax: float) -> np.ndarray:
    """madmom's LogarithmicFilterbank [shape=(frame_size // 2, bands)] float32 as its
    LogarithmicFilteredSpectrogramProcessor builds it (fref 440 Hz, filters normalised to area 1,
    duplicate low-frequency filters dropped), so the networks trained on it see the same bands."""
    return np.asarray(LogarithmicFilterbank(
        fft_frequencies(frame_size // 2, sample_rate), num_bands=num_bands, fmin=fmin, fmax=fmax,
        fref=440.0, norm_filters=True, unique_filters=True), dtype=np.float32)


def log_filtered_spectrogram(signal: np.ndarray, frame_size: int, fps: float, sample_rate: int,
                             filterbank: np.ndarray) -> np.ndarray:
    """madmom's LogarithmicFilteredSpectrogram with its defaults (mul 1, add 1): log10(|STFT| @ filterbank + 1),
    for a filterbank from `log_filterbank`."""
    spec = filtered_spectrogram(signal, frame_size, fps, sample_rate, filterbank)
    spec += 1.0
    return np.log10(spec, out=spec)


def _spectrogram(signal: np.ndarray, frame_size: int, fps: float, sample_rate: int,
                 filterbank: np.ndarray | None) -> np.ndarray:
    """The one block loop behind both spectrograms. Each block copies only its own stretch of the signal,
    zero-padded where frames hang over either end, so the signal is never copied whole."""
    hop = sample_rate / fps
    frames = num_frames(len(signal), hop)
    half = frame_size // 2
    starts = (np.arange(frames) * hop).astype(np.int64) - half
    block = max(1, BLOCK_SAMPLES // frame_size)
    window = np.hanning(frame_size).astype(np.float32)
    buffer = np.empty((min(block, frames), frame_size), dtype=np.float32)
    out = np.empty((frames, half if filterbank is None else filterbank.shape[1]), dtype=np.float32)
    magnitude = np.empty((0 if filterbank is None else len(buffer), half), dtype=np.float32)
    for lo in range(0, frames, block):
        hi = min(lo + block, frames)
        first, stop = starts[lo], starts[hi - 1] + frame_size
        stretch = np.zeros(stop - first, dtype=np.float32)
        inside = slice(max(first, 0), min(stop, len(signal)))
        stretch[inside.start - first:inside.stop - first] = signal[inside]
        views = sliding_window_view(stretch, frame_size)
        # An integer hop (44100 / 100) makes the frames a plain strided view; otherwise gather them.
        rows = views[::int(hop)] if float(hop).is_integer() else views[starts[lo:hi] - first]
        framed = np.multiply(rows, window, out=buffer[: hi - lo])
        spectrum = scipy.fft.rfft(framed, axis=1, overwrite_x=True)[:, :half]
        if filterbank is None:
            np.abs(spectrum, out=out[lo:hi])
        else:
            np.matmul(np.abs(spectrum, out=magnitude[: hi - lo]), filterbank, out=out[lo:hi])
    return out


def retuned(filterbank: np.ndarray, frame_size: int, sample_rate: int, cents: float) -> np.ndarray:
    """`filterbank` [shape=(frame_size // 2, bands)] for music tuned `cents` from A=440: each filter stretched
    along frequency by that ratio (and normalised to area 1 again), so a note sharp by `cents` lands in its
    band as it would at A=440. Same bands, same shape: the networks read it unchanged."""
    if cents == 0:
        return filterbank
    frequencies = fft_frequencies(frame_size // 2, sample_rate)
    stretched = np.stack([np.interp(frequencies / 2 ** (cents / 1200), frequencies, band) for band in filterbank.T],
                         axis=1)
    sums = stretched.sum(axis=0, keepdims=True)
    return np.asarray(stretched / np.where(sums > 0, sums, 1.0), dtype=np.float32)
