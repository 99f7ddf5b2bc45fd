"""Which metrical level is the beat when the network hears two: the tracked one or half of it.

The bar tracker follows the level the network fires on most steadily. On
expressive or acoustic music with running notes the network also fires
between those beats (a choro guitar in sixteenths: tracked at 158 BPM, the
eighths, where people tap 77), and then the tracked level is only one of two
candidates a tracker cannot tell apart by periodicity: the levels nest. What
people tap then is the level nearer a moderate tempo, so that one is kept.

Only when the network fires between the tracked beats: on the rendered suite
it never does (0.00-0.11 of the on-beat activation), and there the tracked
level is right at every tempo from 70 to 180 BPM. madmom's comb-filter tempo
histogram over the same activation was measured as a second witness and left
out: it prefers half tempo on most songs above 150 BPM, and weighed against
the tracker it corrected one octave in 80 songs at parameters where a
neighbouring setting broke another.
"""

from __future__ import annotations

import numpy as np

# The tempo people tap when a metre offers two levels (the log-midpoint of the two levels decides).
MODERATE_BPM = 105.0
# Activation half way between tracked beats, relative to the activation on them, from which the network
# hears a level twice as fast as the tracked one (rendered songs: 0.00-0.11; the choro guitar: 0.30).
FASTER_LEVEL = 0.25
PEAK_RADIUS_FRAMES = 3


def _peaks(activation: np.ndarray, frames: np.ndarray) -> np.ndarray:
    offsets = np.arange(-PEAK_RADIUS_FRAMES, PEAK_RADIUS_FRAMES + 1)
    window = np.clip(frames[:, None] + offsets[None, :], 0, len(activation) - 1)
    return activation[window].max(axis=1)


def faster_level_salience(activation: np.ndarray, times: np.ndarray, fps: float) -> float:
    """Mean activation half way between tracked beats over the mean activation at them."""
    on = _peaks(activation, np.round(times * fps).astype(int))
    between = _peaks(activation, np.round((times[1:] + times[:-1]) / 2 * fps).astype(int))
    return float(between.mean() / max(on.mean(), 1e-9))


def half_is_the_beat(activation: np.ndarray, times: np.ndarray, fps: float, min_bpm: float) -> bool:
    """Whether every other tracked beat is the beat: the network hears a faster level under the tracked one,
    and half the tracked tempo is nearer a moderate tempo (and still a tempo the tracker allows)."""
    if len(times) < 8 or faster_level_salience(activation, times, fps) < FASTER_LEVEL:
        return False
    tracked = 60.0 / float(np.median(np.diff(times)))
    half = tracked / 2
    return half >= min_bpm and abs(np.log2(half / MODERATE_BPM)) < abs(np.log2(tracked / MODERATE_BPM))


def on_beat_share(activation: np.ndarray, times: np.ndarray, fps: float) -> np.ndarray:
    """Per tracked beat, its activation over its own plus the mean of its neighbours': above 0.5 where it is
    the stronger of two alternating beats, the beat of the slower level."""
    peaks = _peaks(activation, np.round(times * fps).astype(int))
    padded = np.concatenate([[peaks[1]], peaks, [peaks[-2]]])
    neighbours = (padded[:-2] + padded[2:]) / 2
    return peaks / np.maximum(peaks + neighbours, 1e-9)
