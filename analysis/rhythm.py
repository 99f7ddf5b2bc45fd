"""Beats, downbeats and meter: madmom's joint beat/downbeat RNN decoded by its bar-tracking DBN.

The network's beat column doubles as the beat activation, so one network pass
serves beats, downbeats and meter; the DBN runs over the whole file at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from madmom.features.downbeats import DBNDownBeatTrackingProcessor
from madmom.ml.nn import NeuralNetworkEnsemble
from madmom.models import DOWNBEATS_BLSTM

from .features import FPS, RhythmFeatures

METERS = (3, 4)
MIN_BPM = 55.0
MAX_BPM = 215.0
CONFIDENCE_RADIUS_FRAMES = 3
ACTIVATION_FLOOR = 1e-4


@dataclass(frozen=True)
class Activations:
    """Beat and downbeat probabilities per frame; shape (frames, 2), columns beat, downbeat."""

    values: np.ndarray
    fps: int = FPS

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


class DownbeatNetwork:
    """madmom's eight-network BLSTM ensemble, loaded once."""

    def __init__(self) -> None:
        self._nn = NeuralNetworkEnsemble.load(DOWNBEATS_BLSTM)

    def __call__(self, features: RhythmFeatures) -> Activations:
        out = np.asarray(self._nn(features.stacked), dtype=np.float32)
        return Activations(values=out[:, 1:], fps=features.fps)


class BeatTracker:
    """Decodes activations into beats with bar positions, trying 3/4 and 4/4 bars."""

    def __init__(self, *, meters=METERS, min_bpm: float = MIN_BPM, max_bpm: float = MAX_BPM) -> None:
        self._dbn = DBNDownBeatTrackingProcessor(
            beats_per_bar=list(meters), min_bpm=min_bpm, max_bpm=max_bpm, fps=FPS)

    def __call__(self, activations: Activations) -> Beats:
        values = activations.values
        if len(values) < 2 * activations.fps or float(values.max(initial=0.0)) < 0.05:
            return Beats.empty()
        tracked = np.asarray(self._dbn(_loggable(values)))
        if tracked.size == 0:
            return Beats.empty()
        times, positions = tracked[:, 0], tracked[:, 1].astype(int)
        return Beats(times=times, positions=positions,
                     confidence=beat_confidence(values.sum(axis=1), times, activations.fps))


def _loggable(values: np.ndarray) -> np.ndarray:
    """The DBN takes logs of beat, downbeat and 1 - both: keep each inside (0, 1) with room left over."""
    values = np.clip(values, ACTIVATION_FLOOR, 1.0)
    total = values.sum(axis=1, keepdims=True)
    return np.where(total > 1 - ACTIVATION_FLOOR, values * (1 - ACTIVATION_FLOOR) / total, values)


def beat_confidence(activation: np.ndarray, times: np.ndarray, fps: int) -> np.ndarray:
    """Peak beat+downbeat probability within a few frames of each beat, clipped to 0..1."""
    frames = np.round(times * fps).astype(int)
    out = np.empty(len(frames))
    for i, frame in enumerate(frames):
        lo, hi = max(frame - CONFIDENCE_RADIUS_FRAMES, 0), min(frame + CONFIDENCE_RADIUS_FRAMES + 1, len(activation))
        out[i] = activation[lo:hi].max(initial=0.0)
    return np.clip(out, 0.0, 1.0)

