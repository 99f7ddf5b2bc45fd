"""Chords: madmom's CNN chord features decoded by its CRF, with posteriors for confidence.

madmom's CRF gives only the best path; running forward-backward over the same
potentials gives each frame's label probability, so a chord's confidence is
the mean probability the model itself puts on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from madmom.ml.crf import ConditionalRandomField
from madmom.models import CHORDS_CFCRF

from beatwatch.analysis.audio.decode import SAMPLE_RATE
from beatwatch.analysis.audio.spectrum import log_filtered_spectrogram, log_filterbank, retuned

from .vocabulary import simple

CHORD_FPS = 10
# madmom's CNNChordFeatureProcessor input: 8192-sample frames, 24 bands per octave from 60 to 2600 Hz.
FRAME_SIZE = 8192
BANDS_PER_OCTAVE, FMIN, FMAX = 24, 60.0, 2600.0
# madmom's class order: 12 major triads from A, 12 minor triads from A, then no-chord.
PITCHES = ("A", "A#", "B", "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#")
CHORD_LABELS = tuple(f"{p}:maj" for p in PITCHES) + tuple(f"{p}:min" for p in PITCHES) + ("N",)
NO_CHORD = len(CHORD_LABELS) - 1


@dataclass(frozen=True)
class ChordSegment:
    start: float
    end: float
    label: str
    confidence: float

    @property
    def simple(self) -> str:
        """The label's majmin reduction (`vocabulary.simple`)."""
        return simple(self.label)


@dataclass(frozen=True)
class ChordFrames:
    """Per-frame chord posteriors, shape (frames, 25), on a CHORD_FPS clock, plus the decoded classes."""

    posteriors: np.ndarray
    path: np.ndarray
    fps: int = CHORD_FPS


class ChordRecognizer:
    """The input of madmom's chord-feature CNN (which `networks` runs) and its CRF, loaded once (`crf`, which
    the beat-grid decoder shares); the spectrogram comes from the blocked STFT of `spectrum.py`, and a test
    holds it equal to madmom's own."""

    def __init__(self) -> None:
        self._filterbank = log_filterbank(FRAME_SIZE, SAMPLE_RATE, BANDS_PER_OCTAVE, FMIN, FMAX)
        self.crf = ConditionalRandomField.load(CHORDS_CFCRF[0])

    def spectrogram(self, mono: np.ndarray, sample_rate: int, tuning_cents: float = 0.0) -> np.ndarray:
        """The feature CNN's input [shape=(frames, bands)] at CHORD_FPS; the network was trained at SAMPLE_RATE,
        on music at A=440, so its bands are moved to the recording's tuning (a band 40 cents flat read half its
        chords a semitone off)."""
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"chord features expect {SAMPLE_RATE} Hz, got {sample_rate} Hz")
        bank = retuned(self._filterbank, FRAME_SIZE, SAMPLE_RATE, tuning_cents)
        return log_filtered_spectrogram(mono, FRAME_SIZE, CHORD_FPS, SAMPLE_RATE, bank)

    def frames(self, features: np.ndarray) -> ChordFrames:
        """CRF decoding over the whole file's features."""
        if len(features) == 0:
            return ChordFrames(np.zeros((0, len(CHORD_LABELS))), np.zeros(0, dtype=int))
        return ChordFrames(posteriors=crf_posteriors(self.crf, features),
                           path=np.asarray(self.crf(features), dtype=int))

    def __call__(self, features: np.ndarray) -> list[ChordSegment]:
        return chord_segments(self.frames(features))


def crf_posteriors(crf: ConditionalRandomField, observations: np.ndarray) -> np.ndarray:
    """Forward-backward marginals of madmom's linear-chain CRF (same potentials as its Viterbi).

    Run in the linear domain with each step normalised (the scaled recursion of an HMM): the CRF's
    transition scores lie within a few units, so exp(A) neither overflows nor underflows, and one small
    matrix-vector product per frame replaces a log-sum-exp over the 25x25 table; a logsumexp per frame was
    most of the chord stage."""
    unary = crf.c + observations @ crf.W
    n = len(unary)
    emission = np.exp(np.asarray(unary - unary.max(axis=1, keepdims=True), dtype=np.float64))
    transition = np.exp(np.asarray(crf.A, dtype=np.float64))
    alpha = np.empty_like(emission)
    prev = np.exp(crf.pi - crf.pi.max())
    for i in range(n):
        step = (prev @ transition) * emission[i]
        prev = alpha[i] = step / step.sum()
    beta = np.empty_like(emission)
    beta[-1] = np.exp(crf.tau - crf.tau.max())
    for i in range(n - 2, -1, -1):
        step = transition @ (emission[i + 1] * beta[i + 1])
        beta[i] = step / step.sum()
    posterior = alpha * beta
    return posterior / posterior.sum(axis=1, keepdims=True)


def chord_segments(frames: ChordFrames) -> list[ChordSegment]:
    """Runs of one decoded class become segments; confidence is the mean posterior of that class."""
    path = frames.path
    if len(path) == 0:
        return []
    bounds = np.flatnonzero(np.diff(path)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(path)]])
    return [
        ChordSegment(start=s / frames.fps, end=e / frames.fps, label=CHORD_LABELS[path[s]],
                     confidence=float(frames.posteriors[s:e, path[s]].mean()))
        for s, e in zip(starts, ends)
    ]
