"""Key evidence from chords: how well each of the 24 keys explains a chord sequence, bar by bar and as a whole.

Pitch-class profiles (and madmom's key CNN, which learns them) cannot tell
C major from A minor when the music only uses their shared chords: Am F C G
is the same set of notes as C G Am F. What tells them apart is where the
music rests: the chord it starts on, the chord it ends on, the chord it
holds longest, the chord its dominant resolves to. This module scores keys from the chord labels the chord
recogniser already produced, so the key recogniser can add that evidence to
the CNN's and decode a key timeline on the bar grid.

Keys and chords share one index (madmom's order): 0-11 are A major .. Ab
major and A:maj .. G#:maj, 12-23 are A minor .. G# minor and A:min .. G#:min,
so key k's tonic triad is chord class k.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .spelling import pitch_class

NUM_KEYS = 24
MAJOR, MINOR = 0, 1
A_PITCH_CLASS = 9  # madmom's classes start at A
# Harte qualities by the triad they stand on; the others (dim, hdim7, sus2, sus4, power chords) have no
# major or minor third and say nothing about the mode.
THIRDS = {"maj": MAJOR, "7": MAJOR, "maj7": MAJOR, "6": MAJOR, "maj6": MAJOR, "9": MAJOR, "maj9": MAJOR,
          "min": MINOR, "min7": MINOR, "min6": MINOR, "min9": MINOR, "minmaj7": MINOR}
# P(chord | key) by (semitones from the tonic to the root, quality 0 = major / 1 = minor), from common
# practice and pop harmony; every chord not listed shares what is left. Tonic, subdominant and dominant
# carry the most weight, so C G Am F leans to C major and Am Dm Em to A minor on harmony alone.
CHORD_GIVEN_MODE: dict[int, dict[tuple[int, int], float]] = {
    MAJOR: {(0, 0): .24, (7, 0): .17, (5, 0): .15, (9, 1): .12, (2, 1): .09, (4, 1): .05,
            (10, 0): .03, (2, 0): .025, (4, 0): .02, (5, 1): .02, (8, 0): .02, (3, 0): .01},
    MINOR: {(0, 1): .24, (5, 1): .12, (7, 0): .12, (8, 0): .12, (3, 0): .10, (10, 0): .10,
            (7, 1): .07, (5, 0): .03, (1, 0): .01},
}
# Tonic evidence (log-odds added to a key whose tonic triad is ...): the first chord that lasts a beat,
# the last one, a chord held longer than the others (`held_excess`), one reached from its dominant (`cadences`).
FIRST_CHORD_WEIGHT = 2.0
LAST_CHORD_WEIGHT = 0.5
MOST_HELD_WEIGHT = 0.75
MIN_CHORD_BEATS = 1.0
HELD_EXCESS_FULL = 1.5
CADENCE_WEIGHT = 1.5
# A first chord X major whose note a minor third below is this loud (against X's own notes) may be that
# note's minor seventh chord (`first_chord_readings`).
SIXTH_RATIO = 0.6


def chord_class(label: str) -> int | None:
    """Index 0..23 of the major or minor triad a Harte label stands on ("A:maj" .. "G#:min", "C:min7/b3" is
    C minor, "G:7" G major); None for "N", for chords without a major or minor third, and anything else.

    A seventh chord counts as the triad on its root, never as the triad above it: Cm7 sounds E♭ G B♭ too,
    but its tonal function is C minor's."""
    root, colon, rest = label.partition(":")
    pc = pitch_class(root)
    quality = rest.partition("/")[0] if colon else "maj"
    if pc is None or quality not in THIRDS:
        return None
    return (pc - A_PITCH_CLASS) % 12 + (NUM_KEYS // 2 if THIRDS[quality] == MINOR else 0)


def chord_given_key() -> np.ndarray:
    """log P(chord class | key), shape (24 keys, 24 chord classes)."""
    table = np.empty((NUM_KEYS, NUM_KEYS))
    for key in range(NUM_KEYS):
        mode, tonic = divmod(key, 12)
        weights = CHORD_GIVEN_MODE[mode]
        rest = (1.0 - sum(weights.values())) / (NUM_KEYS - len(weights))
        for chord in range(NUM_KEYS):
            quality, root = divmod(chord, 12)
            table[key, chord] = np.log(weights.get(((root - tonic) % 12, quality), rest))
    return table


LOG_CHORD_GIVEN_KEY = chord_given_key()


def relative(key: int) -> int:
    """The relative minor of a major key and the relative major of a minor one."""
    mode, tonic = divmod(key, 12)
    return 12 + (tonic + 9) % 12 if mode == MAJOR else (tonic + 3) % 12


@dataclass(frozen=True)
class Chord:
    """A chord segment reduced to what key evidence needs."""

    start: float
    end: float
    chord: int  # class 0..23

    @property
    def duration(self) -> float:
        return self.end - self.start


def chord_runs(segments: Sequence, start: float = -np.inf, end: float = np.inf) -> list[Chord]:
    """Segments with a majmin label (objects with start, end, label), clipped to [start, end), N dropped."""
    runs: list[Chord] = []
    for seg in segments:
        chord = chord_class(seg.label)
        lo, hi = max(float(seg.start), start), min(float(seg.end), end)
        if chord is not None and hi > lo:
            if runs and runs[-1].chord == chord and abs(runs[-1].end - lo) < 1e-6:
                runs[-1] = Chord(runs[-1].start, hi, chord)
            else:
                runs.append(Chord(lo, hi, chord))
    return runs


def bar_weights(runs: Sequence[Chord], edges: np.ndarray) -> np.ndarray:
    """Share of each bar [edges[i], edges[i+1]) that each chord class covers, shape (bars, 24)."""
    edges = np.asarray(edges, dtype=float)
    weights = np.zeros((max(len(edges) - 1, 0), NUM_KEYS))
    if len(weights) == 0:
        return weights
    lengths = np.diff(edges)
    for run in runs:
        first = max(int(np.searchsorted(edges, run.start, side="right")) - 1, 0)
        last = min(int(np.searchsorted(edges, run.end, side="left")), len(weights))
        for bar in range(first, last):
            overlap = min(run.end, edges[bar + 1]) - max(run.start, edges[bar])
            if overlap > 0 and lengths[bar] > 0:
                weights[bar, run.chord] += overlap / lengths[bar]
    return weights


def harmonic_fit(weights: np.ndarray) -> np.ndarray:
    """Per bar, the log-likelihood of its chords under each key, shape (bars, 24); bars without chords are 0."""
    return weights @ LOG_CHORD_GIVEN_KEY.T


def tonic_evidence(runs: Sequence[Chord], weights: np.ndarray, beat_s: float,
                   notes: Callable[[float, float], np.ndarray] | None = None) -> np.ndarray:
    """Log-odds per key from where the music rests.

    runs: the chords in order; weights: (bars, 24) from `bar_weights`, so that "held longest" counts
    bars, not seconds, and a tempo ramp does not favour the chords played slowest. The first and the
    last chord are the first and last held at least MIN_CHORD_BEATS, so a stray frame does not count.
    notes(start, end): the pitch classes sounding then (12, from A), to read the first chord with.
    """
    evidence = np.zeros(NUM_KEYS)
    held = [r for r in runs if r.duration >= MIN_CHORD_BEATS * beat_s * 0.95] or list(runs)
    if not held:
        return evidence
    first = held[0]
    for chord, share in first_chord_readings(first.chord, notes(first.start, first.end) if notes else None):
        evidence[chord] += share * FIRST_CHORD_WEIGHT
    evidence[held[-1].chord] += LAST_CHORD_WEIGHT
    evidence += MOST_HELD_WEIGHT * held_excess(weights.sum(axis=0))
    evidence += CADENCE_WEIGHT * cadences(held)
    return evidence


def first_chord_readings(chord: int, notes: np.ndarray | None) -> list[tuple[int, float]]:
    """(chord class, share of the first-chord evidence): the chord itself, or, for a major triad whose
    minor third below sounds as loud as its own notes (SIXTH_RATIO of their mean), half to the minor
    seventh chord on that note. The chord recogniser names Dm7 (D F A C) by its upper triad, F major, most
    often where no bass plays its root (a pad intro), and a song that opens on it opens on D minor's
    tonic; F6 would sound the same notes, which is why the evidence is split rather than moved."""
    if notes is None or chord >= NUM_KEYS // 2 or not notes.sum() > 0:
        return [(chord, 1.0)]
    triad = notes[[chord, (chord + 4) % 12, (chord + 7) % 12]].mean()
    if notes[(chord - 3) % 12] < SIXTH_RATIO * triad:
        return [(chord, 1.0)]
    return [(chord, 0.5), (NUM_KEYS // 2 + (chord - 3) % 12, 0.5)]


def cadences(runs: Sequence[Chord]) -> np.ndarray:
    """Per key, the share of arrivals on its tonic chord that come from its dominant (a major triad a fifth
    above: G -> C, E -> Am), counted with one arrival more than heard so that a single one counts little."""
    arrivals = np.zeros(NUM_KEYS)
    authentic = np.zeros(NUM_KEYS)
    for before, after in zip(runs, runs[1:]):
        if before.chord == after.chord:
            continue
        arrivals[after.chord] += 1
        if before.chord < 12 and before.chord == (after.chord % 12 + 7) % 12:
            authentic[after.chord] += 1
    return authentic / (arrivals + 1.0)


def held_excess(totals: np.ndarray) -> np.ndarray:
    """0..1 per chord: how far it is held beyond the average chord in use, full at HELD_EXCESS_FULL times it.

    A progression that gives every chord the same time gives no chord credit (recognition jitter of a
    fraction of a bar moves these shares around), a tonic held twice as long as the rest gets it all.
    """
    used = totals[totals >= 0.5]
    if len(used) == 0:
        return np.zeros_like(totals)
    return np.clip((totals / used.mean() - 1.0) / (HELD_EXCESS_FULL - 1.0), 0.0, 1.0)
