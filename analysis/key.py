"""Key and key changes from madmom's key CNN, run on one shared spectrogram.

The CNN pools over time, so it accepts any slice of the spectrogram: the whole
file gives the song's key, overlapping windows give local evidence, and a
Viterbi pass with a switching penalty turns the windows into a key timeline
that only changes when the evidence stays changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from madmom.audio.signal import FramedSignalProcessor, Signal
from madmom.audio.spectrogram import LogarithmicFilteredSpectrogramProcessor
from madmom.audio.stft import ShortTimeFourierTransformProcessor
from madmom.features.key import KEY_LABELS
from madmom.ml.nn import NeuralNetworkEnsemble
from madmom.ml.nn.activations import softmax
from madmom.models import KEY_CNN
from madmom.processors import SequentialProcessor

FPS = 5
WINDOW_S = 20.0
HOP_S = 5.0
SWITCH_LOG_PENALTY = 8.0


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
    probabilities: np.ndarray
    segments: list[KeySegment]


class KeyRecognizer:
    """Spectrogram chain and CNN ensemble, loaded once."""

    def __init__(self) -> None:
        self._spec = SequentialProcessor((
            FramedSignalProcessor(frame_size=8192, fps=FPS),
            ShortTimeFourierTransformProcessor(),
            LogarithmicFilteredSpectrogramProcessor(num_bands=24, fmin=65, fmax=2100, unique_filters=True),
        ))
        self._nn = NeuralNetworkEnsemble.load(KEY_CNN)

    def probabilities(self, spec: np.ndarray) -> np.ndarray:
        """Softmax over the 24 KEY_LABELS for one spectrogram slice."""
        return softmax(np.asarray(self._nn(spec)).reshape(1, -1))[0]

    def __call__(self, mono: np.ndarray, sample_rate: int) -> KeyResult:
        spec = np.asarray(self._spec(Signal(mono, sample_rate=sample_rate, num_channels=1)))
        if len(spec) < FPS:
            return KeyResult(None, 0.0, np.zeros(len(KEY_LABELS)), [])
        overall = self.probabilities(spec)
        best = int(overall.argmax())
        window, hop = int(WINDOW_S * FPS), int(HOP_S * FPS)
        starts = list(range(0, max(len(spec) - window, 0) + 1, hop))
        local = np.array([self.probabilities(spec[s:s + window]) for s in starts])
        duration = len(spec) / FPS
        return KeyResult(
            key=KEY_LABELS[best], confidence=float(overall[best]), probabilities=overall,
            segments=key_segments(local, [s / FPS for s in starts], window / FPS, duration),
        )


def key_segments(local: np.ndarray, window_starts: list[float], window_s: float, duration: float) -> list[KeySegment]:
    """Viterbi over windowed key probabilities; a change is placed halfway between the windows that disagree."""
    log_p = np.log(np.clip(local, 1e-9, 1.0))
    n, k = log_p.shape
    transition = np.full((k, k), -SWITCH_LOG_PENALTY)
    np.fill_diagonal(transition, 0.0)
    score = log_p[0].copy()
    back = np.zeros((n, k), dtype=int)
    for i in range(1, n):
        cand = score[:, None] + transition
        back[i] = cand.argmax(axis=0)
        score = cand.max(axis=0) + log_p[i]
    path = np.empty(n, dtype=int)
    path[-1] = int(score.argmax())
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    centres = np.array(window_starts) + min(window_s, duration) / 2
    out: list[KeySegment] = []
    run_start = 0
    for i in range(1, n + 1):
        if i == n or path[i] != path[run_start]:
            start = 0.0 if run_start == 0 else float((centres[run_start - 1] + centres[run_start]) / 2)
            end = duration if i == n else float((centres[i - 1] + centres[i]) / 2)
            conf = float(local[run_start:i, path[run_start]].mean())
            out.append(KeySegment(start=start, end=end, key=KEY_LABELS[path[run_start]], confidence=conf))
            run_start = i
    return out
