"""Held chords (fermatas): stretches where time stops, which the bar tracker fills with beats.

The bar tracker's pointer never stops: where a player holds a chord for
seconds and lets a few notes ring out of time (the choro guitar's last
phrase, the end of a hymn line), it keeps counting beats at the tempo it
had, on silence. A listener taps nothing there, and annotations have no
beats there (the choro clip: none for 5.6 s; the tracker put eight). A
tracked beat with no sound of its own is not enough to say so: a pad intro,
a breakdown or a quiet outro also gives the network nothing to fire on, and
there the beats are right. What sets a hold apart is that something is
heard in it and not on the tracked beats: notes rolled over the held chord
land at their own times, between the beats the tracker kept on counting.

So a hold is a stretch after a passage of sounding beats in which at least
half of the tracked beats (and two) are silent, and in which a clear onset
falls off those beats and not half way between two of them (the "and" of a
pulse, where chords stabbing off the beat sound). Its beats are dropped,
the sounding ones with the silent: they are the tracker keeping count over
the hold, and the notes it caught on them are the ones rolled over it. The
bars after a hold are counted afresh from the network's downbeats, starting
on one: the tracker's count ran on through the hold. Quiet intros and
everything before the first passage are left alone (there is no pulse to
have stopped yet), and so is the first interval after a passage, where its
last notes still ring. On the rendered suites no stretch
of a song with a steady pulse qualifies (their quiet stretches hear
nothing off the beats: at most 0.10 of activation, a hold's notes 0.19-0.48).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks

from .bar_phase import bar_positions, downbeat_probability
from .beats import CONFIDENCE_RADIUS_FRAMES, METERS, Activations, Beats

# A tracked beat this confident (peak activation near it) sounds; below it the tracker is counting on silence
# (beats kept over holds: 0.01-0.09).
SOUNDING = 0.15
# This many sounding beats in a row are a passage: a pulse that holds can stop after it.
PASSAGE_BEATS = 3
# An onset is heard from this much activation (notes rolled over a hold: 0.19-0.48; the loudest thing between
# the beats of the rendered suites' quiet stretches: 0.10).
HEARD = 0.15
# An onset within this fraction of a beat of its middle is the pulse's "and", not a note out of time.
MIDDLE = 0.1


def without_holds(beats: Beats, activations: Activations) -> Beats:
    """`beats` without the beats the tracker counted over holds."""
    times = beats.times
    sounding = beats.confidence >= SOUNDING
    passage = _in_runs(sounding, PASSAGE_BEATS)
    combined = activations.values.sum(axis=1)
    onsets = find_peaks(combined, height=HEARD)[0] / activations.fps
    radius = CONFIDENCE_RADIUS_FRAMES / activations.fps
    holds = []
    for start, stop in _runs(~passage):
        silent = int((~sounding[start:stop]).sum())
        if start == 0 or silent < 2 or 2 * silent < stop - start:
            continue
        # The grid the tracker kept from the stretch's first beat on: its beats, the next passage's first
        # beat, or one more interval where the file ends in the stretch.
        grid = times[start:stop + 1] if stop < len(times) else np.append(times[start:], 2 * times[-1] - times[-2])
        if _out_of_time(onsets[(onsets > grid[0] + radius) & (onsets < grid[-1] - radius)], grid, radius):
            holds.append((start, stop))
    if not holds:
        return beats
    positions, keep = beats.positions.copy(), np.ones(len(times), dtype=bool)
    meter = beats.meter or max(METERS)
    for (start, stop), end in zip(holds, [start for start, _ in holds[1:]] + [len(times)]):
        keep[start:stop] = False
        if stop < end:
            downbeat = downbeat_probability(activations.values, times[stop:end], activations.fps)
            positions[stop:end] = bar_positions(downbeat, meter)
    return Beats(times=times[keep], positions=positions[keep], confidence=beats.confidence[keep])


def _out_of_time(onsets: np.ndarray, grid: np.ndarray, radius: float) -> bool:
    """Whether an onset falls neither on a beat of `grid` nor half way between two, while the ones half way
    do not sound in most intervals (then they are a pulse of their own, off the beat)."""
    before = np.clip(np.searchsorted(grid, onsets) - 1, 0, len(grid) - 2)
    since, until = onsets - grid[before], grid[before + 1] - onsets
    off_beat = np.minimum(since, until) > radius
    middle = np.abs(since / (since + until) - 0.5) <= MIDDLE
    return bool(off_beat.any()) and 2 * int((off_beat & middle).sum()) < len(grid) - 1


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _in_runs(mask: np.ndarray, length: int) -> np.ndarray:
    """True where `mask` is True in a run of at least `length`."""
    out = np.zeros(len(mask), dtype=bool)
    for start, stop in _runs(mask):
        out[start:stop] = stop - start >= length
    return out
