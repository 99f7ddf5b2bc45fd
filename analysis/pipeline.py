"""The analysis chain for one file: decode once, share spectrograms, run every analysis.

An Analyzer loads each model once at construction and is reused for every
file a process handles; `analyze` is the single entry point the CLI and the
daemon's workers both call.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import onnxruntime

from . import ANALYZER_VERSION
from .audio import content_hash, decode, probe
from .chords import ChordRecognizer
from .errors import InputError
from .features import RhythmFeatureProcessor
from .key import KeyRecognizer
from .danceability import danceability
from .loudness import energy_curve, measure_loudness
from .rhythm import BeatTracker, DownbeatNetwork
from .tempo import estimate_tempo
from .timeline import Results, assemble
from .transients import detect_onsets, match_beats

onnxruntime.set_default_logger_severity(3)

# Below this length beat tracking and key detection have too little to go on.
MIN_MUSIC_S = 3.0

ANALYSES = {
    "beats": "madmom DOWNBEATS_BLSTM + DBN bar tracker (3/4, 4/4)",
    "downbeats": "madmom DOWNBEATS_BLSTM + DBN bar tracker (3/4, 4/4)",
    "tempo": "median beat interval; local median over 5 beats",
    "transients": "spectral flux (2048/100 fps, shared with beats), nearest within 70 ms",
    "chords": "madmom CNN chord features + CRF, forward-backward confidence",
    "key": "madmom KEY_CNN, 20 s windows + Viterbi for changes",
    "loudness": "essentia LoudnessEBUR128",
    "danceability": "beat salience x tempo steadiness x attack x tempo preference",
    "energy": "RMS dBFS over 0.5 s mapped -60..0 dB to 0..1",
    "tags": "not configured",
}

Progress = Callable[[str, float], None]


class Analyzer:
    """Holds every model; one per process, reused for every file."""

    def __init__(self) -> None:
        self._features = RhythmFeatureProcessor()
        self._downbeats = DownbeatNetwork()
        self._tracker = BeatTracker()
        self._chords = ChordRecognizer()
        self._key = KeyRecognizer()

    def analyze(self, path: str | os.PathLike, *, max_duration_s: float | None = None,
                progress: Progress | None = None) -> dict:
        """Analyse one file into its timeline document; raises InputError for files that cannot be analysed."""
        report = progress or (lambda stage, fraction: None)
        stages: dict[str, float] = {}
        started = time.perf_counter()

        @contextmanager
        def stage(name: str, fraction: float):
            report(name, fraction)
            t0 = time.perf_counter()
            yield
            stages[name] = round(stages.get(name, 0.0) + time.perf_counter() - t0, 4)

        with stage("decode", 0.0):
            info = probe(path)
            if max_duration_s is not None and info.duration > max_duration_s:
                raise InputError(f"{info.path}: {info.duration:.0f} s is longer than jobs.max_duration_s = {max_duration_s:g}")
            digest = content_hash(path)
            audio = decode(info)
        mono, sr = audio.mono, audio.sample_rate
        notes: list[str] = []
        with stage("loudness", 0.1):
            loudness = measure_loudness(audio.samples, sr)
            energy = energy_curve(mono, sr)
        results = Results(info=info, content_hash=digest, duration=audio.duration,
                          loudness=loudness, energy=energy, notes=notes)
        if loudness.silent:
            notes.append("silence: no beats, chords or key")
        elif audio.duration < MIN_MUSIC_S:
            notes.append(f"too short ({audio.duration:.1f} s < {MIN_MUSIC_S:g} s): no beats, chords or key")
        else:
            self._music(results, mono, sr, stage)
        report("assemble", 0.95)
        wall = time.perf_counter() - started
        performance = {
            "wall_s": round(wall, 3),
            "realtime_factor": round(audio.duration / wall, 2) if wall > 0 else None,
            "stages": stages,
        }
        analyzer = {"version": ANALYZER_VERSION, "device": "cpu", "analyses": dict(ANALYSES)}
        return assemble(results, analyzer=analyzer, performance=performance)

    def _music(self, results: Results, mono: np.ndarray, sr: int, stage) -> None:
        with stage("features", 0.2):
            features = self._features(mono, sr)
        with stage("inference", 0.3):
            activations = self._downbeats(features)
        with stage("beats", 0.5):
            beats = self._tracker(activations)
            results.beats = beats
            results.transients = match_beats(beats.times, detect_onsets(features))
            results.tempo = estimate_tempo(beats.times, beats.confidence)
            results.danceability = danceability(beats, results.tempo, results.transients)
        if len(beats.times) == 0:
            results.notes.append("no beat found")
        with stage("chords", 0.65):
            results.chords = self._chords(mono, sr)
        with stage("key", 0.8):
            results.key = self._key(mono, sr)

