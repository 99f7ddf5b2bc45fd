"""Beat transient markers: the audible attack nearest each beat.

A tracked beat is where the beat grid says the pulse is; the transient is
where the sound actually hits, which is what a producer aligns samples to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d, uniform_filter1d


SEARCH_RADIUS_S = 0.07
PEAK_WINDOW_S = 0.03
THRESHOLD_WINDOW_S = 0.1
THRESHOLD_DELTA = 0.1
NORM_PERCENTILE = 99.0


@dataclass(frozen=True)
class Onsets:
    """Onset times (s) and strengths (0..1, relative to the file's loudest attacks)."""

    times: np.ndarray
    strengths: np.ndarray


@dataclass(frozen=True)
class BeatTransients:
    """Per beat: the matched onset time and strength, NaN time and 0 strength where none is near."""

    times: np.ndarray
    strengths: np.ndarray

    @classmethod
    def empty(cls) -> "BeatTransients":
        return cls(np.zeros(0), np.zeros(0))


def detect_onsets(flux: np.ndarray, fps: float) -> Onsets:
    """Peak-pick the spectral flux: local maxima above a moving mean plus a margin."""
    if flux.size == 0:
        return Onsets(np.zeros(0), np.zeros(0))
    scale = float(np.percentile(flux, NORM_PERCENTILE)) or 1.0
    odf = np.clip(flux / scale, 0.0, 1.0)
    peak_size = max(int(round(PEAK_WINDOW_S * fps)) * 2 + 1, 3)
    mean_size = max(int(round(THRESHOLD_WINDOW_S * fps)) * 2 + 1, 3)
    is_peak = (odf == maximum_filter1d(odf, peak_size)) & (odf > uniform_filter1d(odf, mean_size) + THRESHOLD_DELTA)
    frames = np.flatnonzero(is_peak)
    return Onsets(times=frames / fps, strengths=odf[frames])


def match_beats(beat_times: np.ndarray, onsets: Onsets, *, radius_s: float = SEARCH_RADIUS_S) -> BeatTransients:
    """For each beat, the nearest onset within radius_s."""
    times = np.full(len(beat_times), np.nan)
    strengths = np.zeros(len(beat_times))
    if len(onsets.times) == 0 or len(beat_times) == 0:
        return BeatTransients(times, strengths)
    # Not `analysis.nearest`: the same rule, but a beat exactly halfway between two onsets (common, both sit
    # on the 100 fps grid) rounds to the other side when compared with midpoints, and sidecars must not change.
    midpoints = (onsets.times[1:] + onsets.times[:-1]) / 2
    nearest = np.searchsorted(midpoints, beat_times)
    close = np.abs(onsets.times[nearest] - beat_times) <= radius_s
    times[close] = onsets.times[nearest[close]]
    strengths[close] = onsets.strengths[nearest[close]]
    return BeatTransients(times, strengths)
