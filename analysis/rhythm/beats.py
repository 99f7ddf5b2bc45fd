"""Beats, downbeats and meter: madmom's joint beat/downbeat RNN decoded by its bar-tracking DBN.

The network's beat column doubles as the beat activation, so one network pass
serves beats, downbeats and meter; the DBN runs over the whole file at once.
The DBN's cost grows with the square of the frame rate (more frames, and
more states per beat), so it decodes activations max-pooled to 50 fps and
each beat is then moved to the activation peak at 100 fps: on the benchmark
songs this is 5-6x faster with the same beat and downbeat F-measure.

Viterbi keeps a back-pointer per frame and state (~7,000 states at 50 fps),
so a 3-hour mix cannot be decoded in one piece within bounded memory. Long
activations are decoded in overlapping windows and stitched near the middle
of each overlap, where both windows have context on both sides. Each window
keeps the bar positions its own evidence decided: the DBN holds one bar
phase per window, so after an irregular bar (a 2- or 6-beat bar in a bridge)
the window that has heard more of the new bars is the one that is right, and
forcing the earlier window's count onto the next would carry one irregular
bar's error through the rest of the file. Where the two windows disagree,
the switch is placed at the beat where the network's downbeat evidence for
the joined bars is strongest, which is where the bar phase really changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from madmom.features.downbeats import DBNDownBeatTrackingProcessor

from beatwatch.analysis.audio.features import RHYTHM_FPS

from .bar_phase import bar_positions, count_from_downbeats, downbeat_probability
from .octave import half_is_the_beat, offbeats_of_a_faster_level, on_beat_share

METERS = (3, 4)
MIN_BPM = 55.0
MAX_BPM = 215.0
CONFIDENCE_RADIUS_FRAMES = 3
DBN_POOL = 2
# madmom's tempo-change penalty (100 at 100 fps) per one-frame change of beat interval: at 50 fps a frame is
# twice the tempo step, so the same penalty is halved. Left at 100, a fast song whose beat falls between two
# whole-frame intervals (172 BPM = 17.4 frames) could not alternate them and was tracked at half tempo.
TRANSITION_LAMBDA = 100.0 / DBN_POOL
DBN_WINDOW_S = 120.0
DBN_OVERLAP_S = 20.0
# A beat of the next window this close to the last kept beat is the same beat.
SEAM_MATCH_S = 0.05
# How far from the middle of an overlap the switch between windows may move: both windows keep this
# much context (a quarter of the overlap, 5 s) on each side of it.
SEAM_REACH_S = DBN_OVERLAP_S / 4
ACTIVATION_FLOOR = 1e-4
# The shortest activation the DBN decodes: three beats (two intervals, the fewest a tempo is read from)
# at the slowest tempo the DBN allows take 2.2 s, and below 2 s the network's first and last second,
# where it has no context, are all there is.
MIN_TRACK_S = 2.0


@dataclass(frozen=True)
class Activations:
    """Beat and downbeat probabilities per frame; shape (frames, 2), columns beat, downbeat."""

    values: np.ndarray
    fps: int = RHYTHM_FPS

    def save(self, path) -> None:
        np.savez_compressed(path, values=self.values, fps=self.fps)

    @classmethod
    def load(cls, path) -> "Activations":
        with np.load(path) as data:
            return cls(values=data["values"], fps=int(data["fps"]))


@dataclass(frozen=True)
class Beats:
    """Tracked beats: times in seconds, position in bar (1 = downbeat), activation at each beat."""

    times: np.ndarray
    positions: np.ndarray
    confidence: np.ndarray

    @property
    def meter(self) -> int | None:
        """Beats per bar: the most common highest position among complete bars."""
        if len(self.positions) == 0:
            return None
        starts = np.flatnonzero(self.positions == 1)
        lengths = [int(self.positions[a:b].max()) for a, b in zip(starts[:-1], starts[1:])]
        if not lengths:
            return int(self.positions.max())
        values, counts = np.unique(lengths, return_counts=True)
        return int(values[np.argmax(counts)])

    @classmethod
    def empty(cls) -> "Beats":
        return cls(times=np.zeros(0), positions=np.zeros(0, dtype=int), confidence=np.zeros(0))


class BeatTracker:
    """Decodes activations into beats with bar positions, trying 3/4 and 4/4 bars."""

    def __init__(self, *, meters=METERS, min_bpm: float = MIN_BPM, max_bpm: float = MAX_BPM) -> None:
        self._meters, self._min_bpm, self._max_bpm = list(meters), min_bpm, max_bpm
        self._dbn = DBNDownBeatTrackingProcessor(
            beats_per_bar=self._meters, min_bpm=min_bpm, max_bpm=max_bpm, fps=RHYTHM_FPS // DBN_POOL,
            transition_lambda=TRANSITION_LAMBDA)

    def __call__(self, activations: Activations) -> Beats:
        values = activations.values
        if len(values) < MIN_TRACK_S * activations.fps or float(values.max(initial=0.0)) < 0.05:
            return Beats.empty()
        usable = len(values) // DBN_POOL * DBN_POOL
        pooled = _loggable(values[:usable].reshape(-1, DBN_POOL, values.shape[1]).max(axis=1))
        fps = activations.fps / DBN_POOL
        combined = values.sum(axis=1)
        tracked = self._track(pooled, fps)
        if tracked.size == 0:
            return Beats.empty()
        times = refine_to_peaks(combined, tracked[:, 0], activations.fps, radius=DBN_POOL)
        positions = tracked[:, 1].astype(int)
        if half_is_the_beat(combined, times, activations.fps, self._min_bpm):
            times, positions = every_other_beat(times, positions, on_beat_share(combined, times, activations.fps))
        else:
            meter = Beats(times, positions, np.zeros(0)).meter or max(self._meters)
            start = int(positions[0]) - 1
            if offbeats_of_a_faster_level(combined, times, activations.fps, self._max_bpm):
                # Each tracked beat is two, the second one half way to the next; the bar counts twice as far.
                times = np.sort(np.concatenate([times, (times[1:] + times[:-1]) / 2]))
                meter, start = max(self._meters), 2 * start
            positions = bar_positions(downbeat_probability(values, times, activations.fps), meter, start=start)
        return Beats(times=times, positions=positions, confidence=beat_confidence(combined, times, activations.fps))

    def _track(self, pooled: np.ndarray, fps: float) -> np.ndarray:
        """(time, position) rows over the whole file, decoded window by window and stitched."""
        window, overlap = int(DBN_WINDOW_S * fps), int(DBN_OVERLAP_S * fps)
        tracked = self._decode(pooled[:window], 0, fps)
        start = window - overlap
        while start + overlap < len(pooled):
            tracked = stitch(tracked, self._decode(pooled[start:start + window], start, fps),
                             seam=(start + overlap / 2) / fps, downbeat=pooled[:, 1], fps=fps)
            start += window - overlap
        return tracked

    def _decode(self, segment: np.ndarray, start: int, fps: float) -> np.ndarray:
        """(time, position) rows of one window, times in file seconds."""
        tracked = np.asarray(self._dbn(segment), dtype=float).reshape(-1, 2)
        tracked[:, 0] += start / fps
        return tracked


def stitch(first: np.ndarray, second: np.ndarray, seam: float, downbeat: np.ndarray, fps: float) -> np.ndarray:
    """Join two windows' (time, position) beats near `seam`, each keeping its own bar positions.

    The switch goes to the beat within SEAM_REACH_S of the seam after which the joined downbeats
    (the first window's before it, the second's from it) collect the most downbeat activation;
    where the windows agree every switch scores the same and the seam itself is kept.
    """
    if len(second) == 0:
        return first
    lo, hi = seam - SEAM_REACH_S, seam + SEAM_REACH_S
    first_down = first[(first[:, 1] == 1) & (first[:, 0] >= lo) & (first[:, 0] < hi), 0]
    second_down = second[(second[:, 1] == 1) & (second[:, 0] >= lo) & (second[:, 0] < hi), 0]

    def evidence(times: np.ndarray) -> float:
        return float(downbeat[np.clip(np.round(times * fps).astype(int), 0, len(downbeat) - 1)].sum())

    candidates = np.concatenate([[seam], first[(first[:, 0] > lo) & (first[:, 0] < hi), 0]])
    scores = [evidence(first_down[first_down < c]) + evidence(second_down[second_down >= c - SEAM_MATCH_S])
              for c in candidates]
    best = max(range(len(candidates)), key=lambda i: (round(scores[i], 6), -abs(candidates[i] - seam)))
    switch = candidates[best]
    kept = first[first[:, 0] < switch]
    if len(kept) == 0:
        return second[second[:, 0] >= switch]
    return np.vstack([kept, second[second[:, 0] > kept[-1, 0] + SEAM_MATCH_S]])


def every_other_beat(times: np.ndarray, positions: np.ndarray, on_share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stronger of each two alternating beats (which of the two may change along the piece, as the
    two-state bar Viterbi decides), keeping the bar lines the faster level was heard with: a bar line on a
    dropped beat moves to the beat after it."""
    keep = bar_positions(on_share, 2) == 1
    downbeat = positions == 1
    moved = downbeat | np.concatenate([[False], downbeat[:-1] & ~keep[:-1]])
    return times[keep], count_from_downbeats(moved[keep], int(positions[np.flatnonzero(keep)[0]]) - 1)


def _loggable(values: np.ndarray) -> np.ndarray:
    """The DBN takes logs of beat, downbeat and 1 - both: keep each inside (0, 1) with room left over."""
    values = np.clip(values, ACTIVATION_FLOOR, 1.0)
    total = values.sum(axis=1, keepdims=True)
    return np.where(total > 1 - ACTIVATION_FLOOR, values * (1 - ACTIVATION_FLOOR) / total, values)


def refine_to_peaks(activation: np.ndarray, times: np.ndarray, fps: int, *, radius: int) -> np.ndarray:
    """Each time moved to the highest activation frame within radius frames (ties keep the earliest)."""
    frames = np.round(times * fps).astype(int)
    offsets = np.arange(-radius, radius + 1)
    candidates = np.clip(frames[:, None] + offsets[None, :], 0, len(activation) - 1)
    best = candidates[np.arange(len(frames)), np.argmax(activation[candidates], axis=1)]
    return best / fps


def beat_confidence(activation: np.ndarray, times: np.ndarray, fps: int) -> np.ndarray:
    """Peak beat+downbeat probability within a few frames of each beat, clipped to 0..1."""
    frames = np.round(times * fps).astype(int)
    out = np.empty(len(frames))
    for i, frame in enumerate(frames):
        lo, hi = max(frame - CONFIDENCE_RADIUS_FRAMES, 0), min(frame + CONFIDENCE_RADIUS_FRAMES + 1, len(activation))
        out[i] = activation[lo:hi].max(initial=0.0)
    return np.clip(out, 0.0, 1.0)

