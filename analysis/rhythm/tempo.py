"""Tempo from the tracked beats: one BPM for the song and a curve that follows ramps and steps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Beats on each side of a beat whose intervals set its local tempo.
CURVE_HALF_WINDOW = 2
STEADY_TOLERANCE = 0.04


@dataclass(frozen=True)
class Tempo:
    """Global BPM (None without beats), its confidence 0..1, and the local BPM at each beat."""

    bpm: float | None
    confidence: float
    curve_times: np.ndarray
    curve_bpm: np.ndarray

    @classmethod
    def unknown(cls) -> "Tempo":
        return cls(None, 0.0, np.zeros(0), np.zeros(0))


def estimate_tempo(beat_times: np.ndarray, beat_confidence: np.ndarray) -> Tempo:
    """Median-interval BPM; confidence is the share of beats near it weighted by beat confidence."""
    if len(beat_times) < 3:
        return Tempo.unknown()
    intervals = np.diff(beat_times)
    bpm = 60.0 / float(np.median(intervals))
    curve = local_tempo(beat_times)
    steady = np.abs(curve / bpm - 1.0) <= STEADY_TOLERANCE
    confidence = float(steady.mean() * np.mean(beat_confidence)) if len(beat_confidence) else 0.0
    return Tempo(bpm=bpm, confidence=confidence, curve_times=beat_times.copy(), curve_bpm=curve)


def local_tempo(beat_times: np.ndarray, half_window: int = CURVE_HALF_WINDOW) -> np.ndarray:
    """BPM at each beat from the median of the intervals around it, robust to one misplaced beat."""
    intervals = np.diff(beat_times)
    out = np.empty(len(beat_times))
    for i in range(len(beat_times)):
        lo, hi = max(i - half_window, 0), min(i + half_window, len(intervals))
        out[i] = 60.0 / float(np.median(intervals[lo:hi]))
    return out
