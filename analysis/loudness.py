"""Loudness after ITU-R BS.1770-4 / EBU R128 and EBU Tech 3342, per-bar loudness and the energy curve.

R128 weighs channels, so loudness reads the decoded channels (a mono file is
one channel, as BS.1770 says), while everything else reads the mono mix. The
decoder hands over 44.1 kHz, so a 48 kHz file is measured without what it
holds above 22 kHz (nothing, for recorded or encoded music; 0.14 LU of white
noise).
The measurement is done here with two biquads and block sums rather than
Essentia's LoudnessEBUR128, which took a tenth of the whole analysis; tests
hold it to the standard's reference levels, and a benchmark check compares it
with Essentia on the benchmark songs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import sosfilt

MOMENTARY_HOP_S = 0.1
MOMENTARY_WINDOW_S = 0.4
ENERGY_HOP_S = 0.5
# Energy maps RMS level linearly from FLOOR_DB (0) to full scale (1).
ENERGY_FLOOR_DB = -60.0
SILENCE_LUFS = -70.0
SHORT_TERM_S = 3.0
FILTER_SLICE = 441000
RELATIVE_GATE_LU = -10.0
LRA_RELATIVE_GATE_LU = -20.0
LRA_PERCENTILES = (10.0, 95.0)
# BS.1770 K-weighting as the analogue prototypes of its two stages, whose bilinear transform at 48 kHz gives the
# biquads BS.1770 publishes (to 1e-14) and at any other rate the response those biquads mean: a high shelf of
# SHELF_GAIN_DB above ~1.7 kHz whose numerator's middle term has the gain 10 ** (SHELF_GAIN_DB / 20 * SHELF_MID),
# then a ~38 Hz high pass with the published numerator 1, -2, 1 (not the unity-gain textbook one).
SHELF_GAIN_DB, SHELF_Q, SHELF_HZ = 3.999843853973347, 0.7071752369554196, 1681.974450955533
SHELF_MID = 0.4996667741545416
HIGHPASS_Q, HIGHPASS_HZ = 0.5003270373238773, 38.13547087602444

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


def k_weighting(sample_rate: int) -> np.ndarray:
    """Second-order sections of the K-weighting filter at the file's own rate (bilinear transform, prewarped).

    The textbook (RBJ cookbook) shelf and high pass read a 1 kHz tone 0.26 dB low: the standard's
    coefficients are not those shapes, and Tech 3341 allows 0.1 LU.
    """
    k = np.tan(np.pi * SHELF_HZ / sample_rate)
    high = 10 ** (SHELF_GAIN_DB / 20)
    mid = high ** SHELF_MID
    shelf = [high + mid * k / SHELF_Q + k * k, 2 * (k * k - high), high - mid * k / SHELF_Q + k * k,
             1 + k / SHELF_Q + k * k, 2 * (k * k - 1), 1 - k / SHELF_Q + k * k]
    k = np.tan(np.pi * HIGHPASS_HZ / sample_rate)
    denominator = 1 + k / HIGHPASS_Q + k * k
    highpass = [denominator, -2 * denominator, denominator, denominator, 2 * (k * k - 1), 1 - k / HIGHPASS_Q + k * k]
    return np.array([np.array(section) / section[3] for section in (shelf, highpass)])

def _lufs(mean_square: np.ndarray | float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return -0.691 + 10 * np.log10(mean_square)


def _window_means(block_power: np.ndarray, blocks: int) -> np.ndarray:
    """Mean power of every run of `blocks` consecutive hop blocks (one value per hop)."""
    if len(block_power) < blocks:
        return np.zeros(0)
    cumulative = np.concatenate([[0.0], np.cumsum(block_power)])
    return (cumulative[blocks:] - cumulative[:-blocks]) / blocks


def _gated_mean(power: np.ndarray, relative_lu: float) -> np.ndarray:
    """The blocks that pass the absolute (-70 LUFS) and the relative gate."""
    power = power[_lufs(power) > SILENCE_LUFS]
    if len(power) == 0:
        return power
    return power[_lufs(power) > _lufs(power.mean()) + relative_lu]


class LoudnessMeter:
    """Measures a file fed in consecutive pieces, keeping the filter state and the partial block between them."""

    def __init__(self, sample_rate: int, channels: int) -> None:
        self.sample_rate = sample_rate
        self._sos = k_weighting(sample_rate)
        self._state = np.zeros((self._sos.shape[0], channels, 2))
        self._hop = int(round(MOMENTARY_HOP_S * sample_rate))
        self._carry = np.zeros(0)
        self._blocks: list[np.ndarray] = []

    def add(self, samples: np.ndarray) -> None:
        """samples: np.ndarray [shape=(n, channels)], the next piece of the file."""
        # Filtered in slices so a long chunk never needs several float64 copies of itself at once; each slice
        # channel-major, so that the filter runs along contiguous memory.
        for start in range(0, len(samples), FILTER_SLICE):
            piece = np.ascontiguousarray(samples[start:start + FILTER_SLICE].T, dtype=np.float64)
            weighted, self._state = sosfilt(self._sos, piece, axis=-1, zi=self._state)
            power = np.concatenate([self._carry, np.einsum("cn,cn->n", weighted, weighted)])
            blocks = len(power) // self._hop
            self._blocks.append(power[: blocks * self._hop].reshape(blocks, self._hop).sum(axis=1) / self._hop)
            self._carry = power[blocks * self._hop:]

    def result(self) -> Loudness:
        block_power = np.concatenate(self._blocks) if self._blocks else np.zeros(0)
        momentary_power = _window_means(block_power, int(round(MOMENTARY_WINDOW_S / MOMENTARY_HOP_S)))
        momentary = _lufs(momentary_power)
        gated = _gated_mean(momentary_power, RELATIVE_GATE_LU)
        if len(gated) == 0:
            return Loudness(None, None, momentary)
        short_term = _gated_mean(_window_means(block_power, int(round(SHORT_TERM_S / MOMENTARY_HOP_S))),
                                 LRA_RELATIVE_GATE_LU)
        low, high = np.percentile(_lufs(short_term), LRA_PERCENTILES) if len(short_term) else (0.0, 0.0)
        return Loudness(float(_lufs(gated.mean())), float(high - low), momentary)


def measure_loudness(samples: np.ndarray, sample_rate: int) -> Loudness:
    """samples: np.ndarray [shape=(n, channels)], channels 1 or 2 (each weighted 1.0)."""
    meter = LoudnessMeter(sample_rate, samples.shape[1])
    meter.add(samples)
    return meter.result()


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
    framed = padded.reshape(blocks, hop)
    rms = np.sqrt(np.einsum("bn,bn->b", framed, framed, dtype=np.float64) / hop)
    db = 20 * np.log10(np.maximum(rms * np.sqrt(2), 1e-10))
    return np.clip(1.0 - db / ENERGY_FLOOR_DB, 0.0, 1.0)

