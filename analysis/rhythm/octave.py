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

Off-beat accompaniment can pull the tracker the other way: chords on every
"and" over a bass on beats 1 and 3, with nothing on 2 and 4, is tracked on
the bass at half tempo (128 BPM heard as 64). The network then fires a
quarter and three quarters of the way through each tracked beat (the
"ands") and not half way (the silent beats): a tracked beat whose quarters
sound and whose middle does not is two beats, the second one unplayed.
Running notes sound at the middle too, so they are left to the rule above.

The network can also hear only the faster level: a ballad picked in eighths
with the bass on beats 1 and 3 is tracked at the eighths (62 BPM heard as
125) with nothing between the tracked beats, and the bar tracker then fits
4/4 bars of eighths, two to each real bar. The bars give it away: the
harmony changes on one tracked bar line in two and almost never on the
other, and the downbeat network fires harder on that one. When both say so
the real bar is twice the tracked one and its beat every other tracked beat.
A song whose chords last two bars has the first sign only: its downbeats
sound alike (rendered songs: accent ratio 0.7-1.06 where the harmony
changes on alternate bar lines; the doubled ballads 1.3-1.7).
"""

from __future__ import annotations

import numpy as np

# The tempo people tap when a metre offers two levels (the log-midpoint of the two levels decides).
MODERATE_BPM = 105.0
# Activation half way between tracked beats, relative to the activation on them, from which the network
# hears a level twice as fast as the tracked one (rendered songs: 0.00-0.11; the choro guitar: 0.30).
FASTER_LEVEL = 0.25
PEAK_RADIUS_FRAMES = 3
# The activation at the quarters of the tracked beats, relative to that on them, from which the network hears the
# off-beats of a level twice as fast (the off-beat song tracked at half tempo: 0.54-0.63; every other rendered
# song, real clip and hard song: 0.21 at most), and how many times the middle's it must be.
OFFBEATS = 0.4
OFFBEATS_OVER_MIDDLE = 2.0
# How many times more chord change one tracked bar line in two must carry than the other (with CHANGE_PRIOR added
# to both) before the bar may be twice as long: rendered doubled ballads 5-14, songs tracked right up to 3.
LONGER_BAR_HARMONY = 3.5
# And how much more downbeat activation: rendered doubled ballads 1.3-1.7, songs tracked right up to 1.06.
LONGER_BAR_ACCENT = 1.2
CHANGE_PRIOR = 0.5


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


def longer_bar_start(change: np.ndarray, accent: np.ndarray, first_downbeat: int, meter: int) -> int | None:
    """Index of a tracked downbeat where bars twice the tracked length start (every 2 * meter beats from it),
    when the harmony and the downbeat network both hear the longer bar; else None.

    change: per tracked beat, how near a chord change is (0..1); accent: downbeat activation at each beat."""
    if meter != 4 or len(change) < 4 * meter:
        return None
    index = np.arange(len(change))
    one, other = (index % (2 * meter) == (first_downbeat + k * meter) % (2 * meter) for k in (0, 1))
    if change[other].sum() > change[one].sum():
        one, other = other, one
    harmony = (change[one].sum() + CHANGE_PRIOR) / (change[other].sum() + CHANGE_PRIOR)
    heard = accent[one].mean() / max(float(accent[other].mean()), 1e-3)
    if harmony < LONGER_BAR_HARMONY or heard < LONGER_BAR_ACCENT:
        return None
    return int(np.flatnonzero(one)[0])


def offbeats_of_a_faster_level(activation: np.ndarray, times: np.ndarray, fps: float, max_bpm: float) -> bool:
    """Whether each tracked beat is two beats: the network fires at its quarters (the off-beats of the faster
    level) and not at its middle, and twice the tracked tempo is one the tracker allows."""
    if len(times) < 8 or 2 * 60.0 / float(np.median(np.diff(times))) > max_bpm:
        return False
    on = _peaks(activation, np.round(times * fps).astype(int)).mean()
    intervals = np.diff(times)

    def level(fraction: float) -> float:
        return float(_peaks(activation, np.round((times[:-1] + fraction * intervals) * fps).astype(int)).mean())
    quarters = (level(0.25) + level(0.75)) / 2
    return quarters >= OFFBEATS * on and quarters >= OFFBEATS_OVER_MIDDLE * level(0.5)
