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


def beat_level(activation: np.ndarray, times: np.ndarray, fps: float, min_bpm: float) -> float | None:
    """The BPM the beat should be tracked at instead of the tracked level's, or None to keep it."""
    if len(times) < 4 or faster_level_salience(activation, times, fps) < FASTER_LEVEL:
        return None
    tracked = 60.0 / float(np.median(np.diff(times)))
    half = tracked / 2
    if half < min_bpm or abs(np.log2(half / MODERATE_BPM)) >= abs(np.log2(tracked / MODERATE_BPM)):
        return None
    return half
