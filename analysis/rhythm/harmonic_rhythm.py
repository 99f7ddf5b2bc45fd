"""Meter and downbeat phase checked against harmony: chords change on downbeats, and enter on one.

madmom's downbeat network hears bars through accents: a kick on the one, a
snare on the backbeat. Without drums (a strummed guitar, a pad and a bass on
every beat) all beats can sound alike and the bar tracker guesses, typically
4/4 for a waltz; with a kit that hits beats 1 and 3 alike it can put the bar
line in the middle of the bar. The tracker's beats are kept (unless the bars
show they are half beats, octave.longer_bar_start); how they group into bars
is checked twice:

1. Bar length. Where the network barely tells its downbeats from the other
   beats, each other grouping (3 or 4 beats, each phase) is scored by how
   much more its downbeats carry chord changes than its other beats do, plus
   how much more downbeat activation they carry, and replaces the tracker's
   when it wins clearly on both counts. A shift by half a 4/4 bar is not
   offered: at two chords a bar, harmonic rhythm cannot tell beat 1 from
   beat 3 (i-iv-V-i changes chord on beat 3 every bar, on beat 1 every other).
2. Half a bar. When the network hears beat 1 and beat 3 of a 4/4 bar about
   alike, the bar starts where the harmony enters: the first chord of the
   music falls on a downbeat. Not where the chords change at most once a bar:
   their changes are the bar lines (rule 3), and a song that opens with a
   pickup (two beats of the last chord before bar 1) enters on beat 3.
3. Irregular bars. A 2- or 6-beat bar in 4/4 moves the bar line by half a
   bar, which a kit hitting beats 1 and 3 alike barely tells the network: it
   carries the old phase on for bars. Where the harmony changes at most once
   a bar, each change is a bar line, so the bar positions are decoded again
   beat by beat with the chord changes as evidence beside the network's,
   and the bar line may move (bar_phase) where both say it does. At two
   chords a bar the changes on beat 3 would pull it half a bar off, so the
   rule keeps out of such songs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from beatwatch.analysis.nearest import nearest

from .beats import METERS, MIN_BPM, Activations, Beats
from .bar_phase import EVIDENCE_FLOOR, bar_positions, downbeat_probability
from .octave import longer_bar_start

# Rule 3: how likely a chord change is at a downbeat and at another beat, where the harmony changes at most once
# a bar; the share of changes closer than a bar to the next from which the harmony is too fast to mark bars;
# and how likely the bar line is to move at any one beat (ten times bar_phase.JUMP: with the harmony beside the
# network, two or three bars of evidence move it).
CHANGE_ON_DOWNBEAT = 0.9
CHANGE_OFF_DOWNBEAT = 0.02
FAST_HARMONY = 0.15
HARMONIC_JUMP = 1e-3

CHANGE_RADIUS_BEATS = 0.4  # a chord change counts for a beat this close (fully at the beat, less further off)
LAG_RANGE_S = (-0.05, 0.2)  # the recogniser's lag behind the beat is looked for in this range
# Fewer chord changes than this say nothing about the bars. Six changes that all fall on one beat of four
# happen by chance once in a thousand, and a 25 s pop excerpt with a chord a bar has six or seven (at eight a
# real one kept its bars half a bar off, where the kit accented beat 3; the suites read the same either way).
MIN_CHANGES = 6
MIN_GAIN = 0.25  # contrast (in 0..1) another grouping must gain over the tracker's, harmonically and in total
# Below this downbeat-activation contrast the network did not hear the bars (rule 1).
WEAK_ACCENT = 0.15
# Below this difference in downbeat-activation contrast beat 1 and beat 3 sound alike (rule 2).
HALF_BAR_MARGIN = 0.2


def chord_changes(chords: Sequence) -> np.ndarray:
    """Start times of chords that follow a different chord (changes to and from N left out)."""
    return np.array([b.start for a, b in zip(chords, chords[1:])
                     if a.label != b.label and "N" not in (a.label, b.label)])


def recogniser_lag(beat_times: np.ndarray, changes: np.ndarray) -> float:
    """How late the chord recogniser reports changes: their median offset from the nearest beat, in LAG_RANGE_S.

    (madmom's 10 fps frames and CRF smoothing put it at 0-150 ms on the benchmark songs.)
    """
    if len(changes) == 0 or len(beat_times) == 0:
        return 0.0
    return float(np.clip(np.median(changes - beat_times[nearest(beat_times, changes)]), *LAG_RANGE_S))


def change_strength(beat_times: np.ndarray, chords: Sequence) -> np.ndarray:
    """Per beat, 0..1: how close a chord change is to it once the lag is taken off (1 at the beat, 0 from
    CHANGE_RADIUS_BEATS away)."""
    strength = np.zeros(len(beat_times))
    changes = chord_changes(chords)
    if len(beat_times) < 2 or len(changes) == 0:
        return strength
    shifted = np.sort(changes - recogniser_lag(beat_times, changes))
    distance = np.abs(shifted[nearest(shifted, beat_times)] - beat_times)
    return np.clip(1.0 - distance / (CHANGE_RADIUS_BEATS * np.gradient(beat_times)), 0.0, 1.0)


def contrast(values: np.ndarray, downbeat: np.ndarray) -> float:
    """Mean of `values` at downbeats minus the mean elsewhere."""
    if downbeat.all() or not downbeat.any():
        return 0.0
    return float(values[downbeat].mean() - values[~downbeat].mean())


def harmony_entry(beat_times: np.ndarray, chords: Sequence) -> int | None:
    """Index of the beat where the first chord held at least a beat enters (lag taken off), if one is near a beat."""
    if len(beat_times) < 2:
        return None
    period = float(np.median(np.diff(beat_times)))
    first = next((c for c in chords if c.label != "N" and c.end - c.start >= period), None)
    if first is None:
        return None
    start = first.start - recogniser_lag(beat_times, chord_changes(chords))
    index = int(np.argmin(np.abs(beat_times - start)))
    return index if abs(beat_times[index] - start) <= CHANGE_RADIUS_BEATS * period else None


def regroup(beats: Beats, chords: Sequence, activations: Activations, min_bpm: float = MIN_BPM) -> Beats:
    """`beats` with positions regrouped into bars that harmony supports, or unchanged (the usual case);
    `min_bpm` is the slowest tempo the beats may be halved to (analysis.min_bpm)."""
    if len(beats.times) < 4 * max(METERS) or not (beats.positions == 1).any():
        return beats
    beats = _longer_bars(beats, chords, _accent(beats, activations), min_bpm)
    n = len(beats.times)
    accent = _accent(beats, activations)
    index = np.arange(n)
    meter0 = beats.meter or max(METERS)
    phase0 = int(np.flatnonzero(beats.positions == 1)[0]) % meter0
    regrouped = _bar_length(beats, chords, accent, meter0, phase0)
    if regrouped is not None:
        meter, phase = regrouped
    else:
        meter, phase = meter0, _half_bar(beats, chords, accent, meter0, phase0)
    if (meter, phase) == (meter0, phase0):
        return _rephase(beats, chords, activations, meter0)
    return replace(beats, positions=((index - phase) % meter + 1).astype(beats.positions.dtype))


def _rephase(beats: Beats, chords: Sequence, activations: Activations, meter: int) -> Beats:
    """Rule 3: bar positions decoded from the network's downbeat evidence and the chord changes together, where
    the harmony changes at most once a bar; else `beats` unchanged."""
    strength = change_strength(beats.times, chords)
    if not _changes_mark_bars(strength, meter):
        return beats
    down = downbeat_probability(activations.values, beats.times, activations.fps)
    on = CHANGE_ON_DOWNBEAT * strength + (1 - CHANGE_ON_DOWNBEAT) * (1 - strength)
    off = CHANGE_OFF_DOWNBEAT * strength + (1 - CHANGE_OFF_DOWNBEAT) * (1 - strength)
    fused = down * on / (down * on + (1 - down) * off)
    positions = bar_positions(np.clip(fused, EVIDENCE_FLOOR, 1 - EVIDENCE_FLOOR), meter,
                              start=int(beats.positions[0]) - 1, jump=HARMONIC_JUMP)
    return replace(beats, positions=positions.astype(beats.positions.dtype))


def _changes_mark_bars(strength: np.ndarray, meter: int) -> bool:
    """Whether the chords change often enough to say where bars are, and at most once a bar (so each change is a
    bar line)."""
    changes = np.flatnonzero(strength > 0.5)
    return len(changes) >= MIN_CHANGES and float(np.mean(np.diff(changes) < meter)) <= FAST_HARMONY


def _accent(beats: Beats, activations: Activations) -> np.ndarray:
    frames = np.clip(np.round(beats.times * activations.fps).astype(int), 0, len(activations.values) - 1)
    return activations.values[frames, 1]


def _longer_bars(beats: Beats, chords: Sequence, accent: np.ndarray, min_bpm: float) -> Beats:
    """Every other beat, in bars of four from the downbeat where the harmony and the network hear bars twice the
    tracked length (and half the tempo is one the tracker allows); else `beats` unchanged."""
    first = int(np.flatnonzero(beats.positions == 1)[0])
    start = longer_bar_start(change_strength(beats.times, chords), accent, first, beats.meter or max(METERS))
    if start is None:
        return beats
    keep = (np.arange(len(beats.times)) - start) % 2 == 0
    times = beats.times[keep]
    if 60.0 / float(np.median(np.diff(times))) < min_bpm:
        return beats
    index = np.arange(len(times)) - int(np.count_nonzero(keep[:start]))
    return Beats(times=times, positions=(index % 4 + 1).astype(beats.positions.dtype),
                 confidence=beats.confidence[keep])


def _bar_length(beats: Beats, chords: Sequence, accent: np.ndarray, meter0: int,
                phase0: int) -> tuple[int, int] | None:
    """Rule 1: (meter, phase) of a clearly better grouping where the network heard no bars, else None."""
    tracked = beats.positions == 1
    accent0 = contrast(accent, tracked)
    strength = change_strength(beats.times, chords)
    if accent0 >= WEAK_ACCENT or np.count_nonzero(strength > 0.5) < MIN_CHANGES:
        return None
    harmonic0 = contrast(strength, tracked)
    total0 = harmonic0 + accent0
    index = np.arange(len(beats.times))
    best = None
    for meter in METERS:
        for phase in range(meter):
            if meter == meter0 == 4 and (phase - phase0) % 4 == 2:
                continue
            downbeat = (index - phase) % meter == 0
            harmonic = contrast(strength, downbeat)
            total = harmonic + contrast(accent, downbeat)
            if harmonic - harmonic0 >= MIN_GAIN and total - total0 >= MIN_GAIN and (best is None or total > best[0]):
                best = (total, meter, phase)
    return None if best is None else (best[1], best[2])


def _half_bar(beats: Beats, chords: Sequence, accent: np.ndarray, meter0: int, phase0: int) -> int:
    """Rule 2: the 4/4 phase, moved by half a bar when beats 1 and 3 sound alike and the harmony enters on 3,
    unless the chord changes mark the bar lines themselves (rule 3 then places them: a pickup enters on 3)."""
    if meter0 != 4 or _changes_mark_bars(change_strength(beats.times, chords), meter0):
        return phase0
    index = np.arange(len(beats.times))
    other = (phase0 + 2) % 4
    if abs(contrast(accent, (index - phase0) % 4 == 0) - contrast(accent, (index - other) % 4 == 0)) >= HALF_BAR_MARGIN:
        return phase0
    entry = harmony_entry(beats.times, chords)
    if entry is not None and (entry - other) % 4 == 0:
        return other
    return phase0
