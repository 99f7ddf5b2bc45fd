"""Loudness (EBU R128 via Essentia), per-bar loudness and the energy curve.

R128 weighs channels, so loudness reads the decoded channels (a mono file is
one channel, as BS.1770 says), while everything else reads the mono mix.
"""

from __future__ import annotations

from dataclasses import dataclass

import essentia
import numpy as np

essentia.log.infoActive = False
essentia.log.warningActive = False

import essentia.standard as es  # noqa: E402  (after silencing: its import logs to stdout)

MOMENTARY_HOP_S = 0.1
MOMENTARY_WINDOW_S = 0.4
ENERGY_HOP_S = 0.5
# Energy maps RMS level linearly from FLOOR_DB (0) to full scale (1).
ENERGY_FLOOR_DB = -60.0
SILENCE_LUFS = -70.0


@dataclass(frozen=True)
class Loudness:
    """Integrated LUFS and range (None for silence); momentary[i] covers [i*hop_s, i*hop_s + 0.4 s)."""

    integrated_lufs: float | None
    range_lu: float | None
    momentary: np.ndarray
    hop_s: float = MOMENTARY_HOP_S

    @property
    def silent(self) -> bool:
        return self.integrated_lufs is None


def measure_loudness(samples: np.ndarray, sample_rate: int) -> Loudness:
    """samples: np.ndarray [shape=(n, channels)], channels 1 or 2."""
    stereo = samples if samples.shape[1] == 2 else np.hstack([samples, np.zeros_like(samples)])
    momentary, _short, integrated, lra = es.LoudnessEBUR128(
        sampleRate=sample_rate, hopSize=MOMENTARY_HOP_S, startAtZero=False)(np.ascontiguousarray(stereo, dtype=np.float32))
    momentary = np.asarray(momentary, dtype=float)
    if not np.isfinite(integrated) or integrated <= SILENCE_LUFS:
        return Loudness(None, None, momentary)
    return Loudness(float(integrated), float(lra), momentary)


def span_loudness(loudness: Loudness, start: float, end: float) -> float | None:
    """Energy-mean of the momentary windows centred inside [start, end), in LUFS."""
    lo = max(int(np.ceil((start - MOMENTARY_WINDOW_S / 2) / loudness.hop_s)), 0)
    hi = max(int(np.ceil((end - MOMENTARY_WINDOW_S / 2) / loudness.hop_s)), lo + 1)
    values = loudness.momentary[lo:hi]
    values = values[np.isfinite(values) & (values > SILENCE_LUFS)]
    if len(values) == 0:
        return None
    return float(10 * np.log10(np.mean(10 ** (values / 10))))


def energy_curve(mono: np.ndarray, sample_rate: int, hop_s: float = ENERGY_HOP_S) -> np.ndarray:
    """RMS level per hop, mapped to 0..1 (ENERGY_FLOOR_DB dBFS and below is 0, full scale 1)."""
    hop = int(hop_s * sample_rate)
    if len(mono) == 0:
        return np.zeros(0)
    blocks = -(-len(mono) // hop)
    padded = np.zeros(blocks * hop, dtype=np.float32)
    padded[: len(mono)] = mono
    rms = np.sqrt(np.mean(padded.reshape(blocks, hop).astype(np.float64) ** 2, axis=1))
    db = 20 * np.log10(np.maximum(rms * np.sqrt(2), 1e-10))
    return np.clip(1.0 - db / ENERGY_FLOOR_DB, 0.0, 1.0)

