"""Key and key changes: madmom's key CNN plus the chords' tonal evidence, decoded on the bar grid.

Two passes over bars:

1. Where the key changes. Each bar scores the 24 keys by how well its
   chords fit them (`tonality.harmonic_fit`) plus a little of the CNN's
   opinion on a window around it, counted once per window however many bars
   share it. A key and its relative minor share one signature, and this
   pass decodes signatures (each the better of its two keys): a minor song
   whose chorus leans on its relative major (i-VI-III-VII, a chorus on III)
   is one key to a musician, not two, and pass 1 on the 24 keys split such
   songs at every chorus. A Viterbi pass with a switching penalty keeps one
   signature until the evidence stays changed, and a signature is cheaper
   to enter on one of its tonic chords, so a change lands on the bar where
   the new key arrives on its tonic. Segments shorter than MIN_SEGMENT_BARS
   are folded into a neighbour. Which of the two keys a segment is in is
   pass 2's question.
2. Which key each segment is in. The segment's chords (mean fit per bar),
   the CNN run over the segment's spectrogram, and where the music rests
   (its first and last chord, a chord held longer than the rest, a chord
   reached from its dominant: `tonality.tonic_evidence`) are summed as
   log-odds, and their softmax is the confidence. That separates A minor
   from C major when the progression never plays the dominant (Am F C G),
   which the CNN alone cannot; the CNN's log-probability is floored so
   that, sure and wrong about relative keys as it often is, it cannot veto.

The song's key is the key held longest. Without chords (no harmony
recognised) the CNN decides alone; without beats, 2-second blocks stand in
for bars.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import math

import numpy as np
from madmom.features.key import KEY_LABELS

from beatwatch.analysis.audio.decode import SAMPLE_RATE
from beatwatch.analysis.audio.spectrum import log_filtered_spectrogram, log_filterbank, retuned
from beatwatch.analysis.nearest import nearest
from .tonality import NUM_KEYS, bar_weights, chord_runs, harmonic_fit, tonic_evidence
from .viterbi import switch_path

KEY_FPS = 5
# madmom's key CNN input: 8192-sample frames, 24 bands per octave from 65 to 2100 Hz.
FRAME_SIZE = 8192
BANDS_PER_OCTAVE, FMIN, FMAX = 24, 65.0, 2100.0
LOCAL_WINDOW_S = 10.0
# Longest slice the CNN hears at once (its memory grows with its input; a song is one slice).
CNN_MAX_S = 600.0
LOCAL_HOP_S = 2.5
FALLBACK_BAR_S = 2.0
PROBABILITY_FLOOR = 2e-2
# Pass 1 (bars): emission = chord fit + LOCAL_CNN_WEIGHT * log p_cnn(window) * bar length / window length;
# a change costs SWITCH_PENALTY, less ENTRY_BONUS times the share of the bar playing the new key's tonic chord.
LOCAL_CNN_WEIGHT = 1.0
MINOR_KEYS = 12  # keys 12..23 are the minor ones
SWITCH_PENALTY = 8.5
ENTRY_BONUS = 2.0
MIN_SEGMENT_BARS = 4
# Pass 2 (segments): FIT_WEIGHT * mean chord fit per bar + CNN_WEIGHT * log p_cnn(segment) + tonic evidence.
FIT_WEIGHT = 2.0
CNN_WEIGHT = 0.2


KeyCnn = Callable[[list[np.ndarray]], list[np.ndarray]]


@dataclass(frozen=True)
class KeySegment:
    start: float
    end: float
    key: str
    confidence: float


@dataclass(frozen=True)
class KeyResult:
    key: str | None
    confidence: float
    probabilities: np.ndarray  # the song key's posterior over KEY_LABELS
    segments: list[KeySegment]


@dataclass(frozen=True)
class _Span:
    first: int  # first bar
    stop: int  # one past the last bar
    key: int
    posterior: np.ndarray


class KeyRecognizer:
    """The key CNN's input (its filterbank built once) and the decoding of its opinions with the chords'."""

    def __init__(self) -> None:
        self._filterbank = log_filterbank(FRAME_SIZE, SAMPLE_RATE, BANDS_PER_OCTAVE, FMIN, FMAX)

    def spectrogram(self, mono: np.ndarray, sample_rate: int, tuning_cents: float = 0.0) -> np.ndarray:
        """The CNN's input at KEY_FPS, madmom's log-filtered spectrogram from the blocked STFT; frame-local,
        so chunks of a long file can be joined. The network was trained at SAMPLE_RATE, and its bands are
        moved to the recording's tuning (`spectrum.retuned`) so that it hears a detuned band in tune."""
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"key spectrogram expects {SAMPLE_RATE} Hz, got {sample_rate} Hz")
        bank = retuned(self._filterbank, FRAME_SIZE, SAMPLE_RATE, tuning_cents)
        return log_filtered_spectrogram(mono, FRAME_SIZE, KEY_FPS, SAMPLE_RATE, bank)

    def __call__(self, spec: np.ndarray, duration: float, cnn: KeyCnn, *, chords: Sequence = (),
                 downbeats: np.ndarray | None = None,
                 notes: Callable[[float, float], np.ndarray] | None = None) -> KeyResult:
        """The key timeline of one song from its whole spectrogram.

        cnn: madmom's key CNN (`Networks.key`), spectrogram slices -> softmax over KEY_LABELS each;
        chords: ChordSegment-like objects (start, end, label) from the chord recogniser;
        downbeats: bar start times in seconds (the bar grid key changes snap to);
        notes(start, end): the pitch classes (12, from A) sounding then (`tuning.notes_between`), to read
        the first chord's notes from.
        """
        if len(spec) < KEY_FPS:
            return KeyResult(None, 0.0, np.zeros(NUM_KEYS), [])
        edges = bar_edges(downbeats, duration)
        window, hop = int(LOCAL_WINDOW_S * KEY_FPS), int(LOCAL_HOP_S * KEY_FPS)
        starts = list(range(0, max(len(spec) - window, 0) + 1, hop))
        local = np.array(cnn([spec[s:s + window] for s in starts]))
        centres = (np.array(starts) + min(window, len(spec)) / 2) / KEY_FPS
        mids = (edges[:-1] + edges[1:]) / 2
        local_log = _log(local[nearest(centres, mids)])

        def segment_cnn(first: int, stop: int) -> np.ndarray:
            lo, hi = int(edges[first] * KEY_FPS), int(np.ceil(edges[stop] * KEY_FPS))
            piece = spec[lo:hi] if hi - lo >= KEY_FPS else spec
            # The CNN's memory grows with its input: a long segment is heard in equal parts, averaged.
            parts = np.array_split(piece, math.ceil(len(piece) / (CNN_MAX_S * KEY_FPS)))
            return np.average(cnn(parts), axis=0, weights=[len(part) for part in parts])

        spans = decode(edges, chords, local_log, segment_cnn, beat_s=float(np.median(np.diff(edges))) / 4,
                       notes=notes)
        segments = [KeySegment(start=float(edges[s.first]), end=float(edges[s.stop]), key=KEY_LABELS[s.key],
                               confidence=float(s.posterior[s.key])) for s in spans]
        main = max(spans, key=lambda s: (sum(edges[t.stop] - edges[t.first] for t in spans if t.key == s.key)))
        return KeyResult(key=KEY_LABELS[main.key], confidence=float(main.posterior[main.key]),
                         probabilities=main.posterior, segments=segments)


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, PROBABILITY_FLOOR, 1.0))


def bar_edges(downbeats: np.ndarray | None, duration: float) -> np.ndarray:
    """Bar lines from 0 to `duration`: the downbeats (the stretch before the first is a bar of its own),
    or FALLBACK_BAR_S blocks when there are fewer than two downbeats."""
    marks = np.asarray(downbeats if downbeats is not None else [], dtype=float)
    marks = marks[(marks > 0.05) & (marks < duration - 0.05)]
    if len(marks) < 2:
        marks = np.arange(FALLBACK_BAR_S, duration - 0.05, FALLBACK_BAR_S)
    return np.concatenate([[0.0], marks, [duration]])


def decode(edges: np.ndarray, chords: Sequence, local_log: np.ndarray, segment_cnn, *, beat_s: float,
           notes: Callable[[float, float], np.ndarray] | None = None) -> list[_Span]:
    """Both passes: key spans over the bars between `edges`.

    local_log: (bars, 24) CNN log-probabilities around each bar; segment_cnn(first, stop) -> (24,) CNN
    probabilities for bars first..stop-1; beat_s: a beat's length, for "a chord held at least a beat"
    (a quarter of the median bar); notes(start, end) -> (12,) pitch classes sounding then, or None.
    """
    runs = chord_runs(chords)
    weights = bar_weights(runs, edges)
    fit = harmonic_fit(weights)
    share = np.diff(edges)[:, None] / LOCAL_WINDOW_S
    emission = signatures(fit + LOCAL_CNN_WEIGHT * share * local_log)
    path = switch_path(emission, SWITCH_PENALTY - ENTRY_BONUS * signatures(weights))
    bounds = merge_short(path, emission, MIN_SEGMENT_BARS)
    spans: list[_Span] = []
    for first, stop in bounds:
        inside = chord_runs(chords, float(edges[first]), float(edges[stop]))
        played = weights[first:stop].sum(axis=1) > 0
        score = CNN_WEIGHT * _log(segment_cnn(first, stop))
        if played.any():
            score = score + FIT_WEIGHT * fit[first:stop][played].mean(axis=0)
            score = score + tonic_evidence(inside, weights[first:stop], beat_s, notes)
        else:
            score = score / CNN_WEIGHT  # no harmony recognised: the CNN decides alone
        posterior = np.exp(score - score.max())
        posterior /= posterior.sum()
        key = int(np.argmax(score))
        if spans and spans[-1].key == key:
            previous = spans.pop()
            size_a, size_b = previous.stop - previous.first, stop - first
            posterior = (previous.posterior * size_a + posterior * size_b) / (size_a + size_b)
            first = previous.first
        spans.append(_Span(first, stop, key, posterior))
    return spans


def signatures(per_key: np.ndarray) -> np.ndarray:
    """(bars, 24) per key -> (bars, 12) per key signature (index = its major key): the better of the major key
    and its relative minor."""
    return np.maximum(per_key[:, :MINOR_KEYS], per_key[:, MINOR_KEYS + (np.arange(MINOR_KEYS) + 9) % 12])


def merge_short(path: np.ndarray, emission: np.ndarray, min_bars: int) -> list[tuple[int, int]]:
    """Runs of one key as (first, stop) bar ranges; runs shorter than `min_bars` join the neighbour whose
    key explains their bars better, shortest first, until none is left (or one run remains)."""
    bounds = np.flatnonzero(np.diff(path)) + 1
    runs = [[int(a), int(b), int(path[a])] for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(path)])]
    while len(runs) > 1:
        i = min(range(len(runs)), key=lambda j: runs[j][1] - runs[j][0])
        first, stop, _ = runs[i]
        if stop - first >= min_bars:
            break
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(runs)]
        j = max(neighbours, key=lambda j: emission[first:stop, runs[j][2]].sum())
        runs[j][0], runs[j][1] = min(runs[j][0], first), max(runs[j][1], stop)
        del runs[i]
        merged: list[list[int]] = []
        for run in runs:
            if merged and merged[-1][2] == run[2]:
                merged[-1][1] = run[1]
            else:
                merged.append(run)
        runs = merged
    return [(first, stop) for first, stop, _ in runs]
