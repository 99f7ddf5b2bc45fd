"""The analysis chain for one file: decode once, share spectrograms, run every analysis.

An Analyzer is built once per process and reused for every file it
handles; `analyze` is the single entry point the CLI and the daemon's
workers both call. The neural networks are handed in (`networks.Networks`,
or the daemon's inference-process client with the same methods), so the
chain is the same wherever they run.

Audio is decoded as a stream of chunks (`analysis.chunk_s`, with margins),
so memory is bounded by one chunk whatever the file's length. Each chunk
yields only compact per-frame results (network activations, chord features,
key spectrogram, loudness blocks, energy); the decoders that need the whole
file (beat/bar DBN, chord CRF, key) then run over the joined results, so
nothing breaks at a chunk border. A typical song is a single chunk.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from . import ANALYZER_VERSION
from beatwatch.analysis.audio.decode import SAMPLE_RATE, Chunk, content_hash, probe, resample, stream
from beatwatch.analysis.harmony.beat_chords import BeatChordDecoder, beat_grid
from beatwatch.analysis.harmony.chroma import Chroma, ChromaProcessor
from beatwatch.analysis.harmony.qualities import name_chords
from beatwatch.analysis.harmony.chords import CHORD_FPS, ChordRecognizer, chord_segments
from beatwatch.analysis.rhythm.danceability import danceability
from .errors import InputError
from beatwatch.analysis.audio.features import RHYTHM_FPS, RhythmFeatureProcessor
from beatwatch.analysis.rhythm.harmonic_rhythm import regroup
from beatwatch.analysis.rhythm.holds import without_holds
from beatwatch.analysis.rhythm.offbeat_phase import onto_the_bass
from beatwatch.analysis.harmony.key import KEY_FPS, KeyRecognizer
from beatwatch.analysis.harmony.tuning import (BINS as TUNING_BINS, deviation_histogram, notes_between, pitch_classes,
                                              spectral_peaks, tuning_cents)
from .loudness import ENERGY_HOP_S, LoudnessMeter, energy_curve
from .form.bar_features import bar_features, block_means
from .form.sections import find_sections
from beatwatch.analysis.rhythm.beats import MAX_BPM, MIN_BPM, MIN_TRACK_S, Activations, BeatTracker
from beatwatch.analysis.rhythm.tempo import estimate_tempo
from .timeline import Results, assemble, bars_from_beats
from beatwatch.analysis.rhythm.transients import detect_onsets, match_beats
from beatwatch.analysis.nets.zoo import TAG_SAMPLE_RATE

if TYPE_CHECKING:  # a worker served by the inference process loads neither onnxruntime nor Essentia
    from beatwatch.analysis.nets.networks import Networks

# Below this the beat tracker has nothing to decode (see MIN_TRACK_S); from it on, a clip with three
# beats gets beats and a tempo (a 2.8 s loop of four beats at 87.5 BPM is real music, not a glitch).
MIN_MUSIC_S = MIN_TRACK_S
DEFAULT_CHUNK_S = 300.0
# Context either side of a chunk: the BLSTM needs seconds of it to settle, the STFTs a frame.
MARGIN_S = 10.0

ANALYSES = {
    "beats": "madmom DOWNBEATS_BLSTM + DBN bar tracker (3/4, 4/4) at 50 fps, peaks refined at 100 fps; "
             "every other beat where harmony and downbeat accent mark bars twice the tracked length, two where "
             "the network fires on the quarters of the tracked beats and not their middle; none counted over a held "
             "chord (silent beats, notes heard between them)",
    "downbeats": "madmom DOWNBEATS_BLSTM + DBN bar tracker (3/4, 4/4) at 50 fps, peaks refined at 100 fps; "
                 "bars regrouped by harmonic rhythm where the network hears no accent, and re-phased by chord "
                 "changes after an irregular bar",
    "tempo": "least-squares fit of beat time against beat number: a line per steady stretch, a parabola per "
             "ramp, a line through 9 beats elsewhere; the song's BPM is the median over its beats",
    "transients": "spectral flux (2048/100 fps, shared with beats), nearest within 70 ms",
    "chords": "madmom CNN chord features scored per beat with its CRF weights, beat-grid Viterbi; "
              "quality (7, maj7, min7, hdim7, dim, sus2, sus4) and bass from a tuned two-register chroma; "
              "CRF forward-backward confidence",
    "key": "madmom KEY_CNN + chord-based tonal evidence, bar-grid Viterbi over key signatures for changes",
    "tuning": "spectral peaks (16384-sample frames, 2 fps), their deviation from the A=440 semitone grid, "
              "histogram peak",
    "loudness": "ITU-R BS.1770-4 / EBU R128 + Tech 3342 LRA",
    "danceability": "beat salience x tempo steadiness x attack x tempo preference",
    "energy": "RMS dBFS over 0.5 s mapped -60..0 dB to 0..1",
    "sections": "bar vectors (chord-CNN features, coarse spectrum and onsets, energy), optimal partition on "
                "downbeats, letters by nearest segment mean, labels from repetition, loudness and position",
}
# The coarse spectrum kept for sections: 100 fps averaged down to this rate, small enough for a 3-hour file.
TIMBRE_FPS = 10

Progress = Callable[[str, float], None]


@dataclass
class _Frames:
    """Per-frame results of the chunks so far, each list on its own clock."""

    activations: list[np.ndarray] = field(default_factory=list)
    flux: list[np.ndarray] = field(default_factory=list)
    register: list[np.ndarray] = field(default_factory=list)
    chord_features: list[np.ndarray] = field(default_factory=list)
    key_spectrogram: list[np.ndarray] = field(default_factory=list)
    chroma: list[Chroma] = field(default_factory=list)
    energy: list[np.ndarray] = field(default_factory=list)
    tuning: np.ndarray = field(default_factory=lambda: np.zeros(TUNING_BINS))
    pitch_classes: list[np.ndarray] = field(default_factory=list)
    timbre: list[np.ndarray] = field(default_factory=list)
    # Each chunk's tag scores with the chunk's length, averaged over the file at the end.
    tags: list[tuple[list[dict], float]] = field(default_factory=list)


def core_frames(chunk: Chunk, frames: int, fps: float) -> slice:
    """The frames of a chunk whose centres fall in its core, so consecutive chunks tile the file's frames."""
    hop = SAMPLE_RATE / fps
    return slice(math.ceil(chunk.core_start / hop), min(math.ceil(chunk.core_end / hop), frames))


class Analyzer:
    """The analyses' filterbanks, decoders and networks; one per process, reused for every file."""

    def __init__(self, networks: Networks, *, chunk_s: float = DEFAULT_CHUNK_S, min_bpm: float = MIN_BPM,
                 max_bpm: float = MAX_BPM, after_chunk: Callable[[], object] = lambda: None) -> None:
        """networks: this process's own (`Networks`) or a client of the daemon's inference process,
        which has the same methods; min_bpm, max_bpm: the tempo range the beats are tracked in (it picks
        the metrical level); after_chunk: run between the chunks of a long file (the daemon hands freed
        memory back to the system there)."""
        self.networks = networks
        self._after_chunk = after_chunk
        self.chunk_s = float(round(chunk_s))
        self.analyses = {**ANALYSES, "tags": networks.describe_tags()}
        self.analyses["beats"] += f", {min_bpm:g}-{max_bpm:g} BPM"
        self._features = RhythmFeatureProcessor()
        self._tracker = BeatTracker(min_bpm=min_bpm, max_bpm=max_bpm)
        self._min_bpm = min_bpm
        self._chords = ChordRecognizer()
        self._beat_chords = BeatChordDecoder(self._chords.crf)
        self._key = KeyRecognizer()
        self._chroma = ChromaProcessor(SAMPLE_RATE, CHORD_FPS)

    def analyze(self, path: str | os.PathLike, *, max_duration_s: float | None = None,
                progress: Progress | None = None, digest: str | None = None, fd: int | None = None) -> dict:
        """Analyse one file into its timeline document; raises InputError for files that cannot be analysed.

        digest: the file's content_hash when the caller has it already (a daemon worker hashes first to find an
        earlier analysis of the same content), so the file is not read a second time for it. fd: the file,
        already opened and checked by the caller, to read instead of opening `path` again. max_duration_s holds
        for what decodes, not only for what the header declares: a header may understate the length."""
        report = progress or (lambda stage, fraction: None)
        stages: dict[str, float] = {}
        started = time.perf_counter()

        @contextmanager
        def stage(name: str, fraction: float | None = None):
            if fraction is not None:
                report(name, fraction)
            t0 = time.perf_counter()
            yield
            stages[name] = round(stages.get(name, 0.0) + time.perf_counter() - t0, 4)

        with stage("decode", 0.0):
            info = probe(path, fd=fd)
            if max_duration_s is not None and info.declared_s > max_duration_s:
                raise InputError(f"{info.path}: {info.duration:.0f} s is longer than "
                                 f"jobs.max_duration_s = {max_duration_s:g}")
            digest = digest or content_hash(path if fd is None else fd)
        meter = LoudnessMeter(SAMPLE_RATE, 1 if info.channels == 1 else 2)
        frames = _Frames()
        samples = 0
        chunks = stream(info, chunk_s=self.chunk_s, margin_s=MARGIN_S, max_duration_s=max_duration_s)
        for chunk in _timed(chunks, stage, "decode"):
            samples = chunk.offset + chunk.core_end
            self._take_chunk(chunk, meter, frames, stage)
            del chunk  # everything this chunk computed is garbage by now
            if info.duration > self.chunk_s:  # a song is one chunk: nothing to hand back between chunks
                self._after_chunk()
            report("analyse", 0.7 * samples / max(info.duration * SAMPLE_RATE, 1.0))
        duration = samples / SAMPLE_RATE
        with stage("loudness"):
            loudness = meter.result()
        notes: list[str] = []
        results = Results(info=info, content_hash=digest, duration=duration, loudness=loudness,
                          energy=np.concatenate(frames.energy), notes=notes)
        if loudness.silent:
            notes.append("silence: no beats, chords, key or sections")
        elif duration < MIN_MUSIC_S:
            notes.append(f"too short ({duration:.1f} s < {MIN_MUSIC_S:g} s): no beats, chords, key or sections")
        else:
            results.tuning_cents = tuning_cents(frames.tuning)
            self._music(results, frames, stage, report)
            results.tags = average_tags(frames.tags)
        report("assemble", 0.95)
        wall = time.perf_counter() - started
        performance = {
            "wall_s": round(wall, 3),
            "realtime_factor": round(duration / wall, 2) if wall > 0 else None,
            "stages": stages,
        }
        device = self.networks.device
        analyzer = {"version": ANALYZER_VERSION, "device": device.name, "device_reason": device.reason,
                    "analyses": dict(self.analyses)}
        return assemble(results, analyzer=analyzer, performance=performance)

    def _take_chunk(self, chunk: Chunk, meter: LoudnessMeter, frames: _Frames, stage) -> None:
        """Reduce one chunk to its compact per-frame results; the chunk's samples are dropped after."""
        core = chunk.samples[chunk.core_start:chunk.core_end]
        mono = chunk.mono
        core_mono = mono[chunk.core_start:chunk.core_end]
        with stage("loudness"):
            meter.add(core)
            frames.energy.append(energy_curve(core_mono, SAMPLE_RATE))
        with stage("tuning"):
            peaks = spectral_peaks(core_mono, SAMPLE_RATE)
            frames.tuning += deviation_histogram(peaks)
            tuning = tuning_cents(frames.tuning) or 0.0  # so far: a song's own, a long file's first chunks'
            frames.pitch_classes.append(pitch_classes(peaks, tuning))
        with stage("features"):
            features = self._features(mono, SAMPLE_RATE)
            key_spec = self._key.spectrogram(mono, SAMPLE_RATE, tuning)
            chord_spec = self._chords.spectrogram(mono, SAMPLE_RATE, tuning)
            chroma = self._chroma(mono, tuning)
        with stage("inference"):
            activations = self.networks.downbeats([features.stacked])[0]
            chord_features = self.networks.chord_features([chord_spec])[0]
        if self.networks.tag_models:
            with stage("tags"):
                tags = self.networks.tags([resample(core_mono, SAMPLE_RATE, TAG_SAMPLE_RATE)])[0]
                frames.tags.append((tags, len(core) / SAMPLE_RATE))
        rhythm_core = core_frames(chunk, len(activations), RHYTHM_FPS)
        frames.activations.append(activations[rhythm_core])
        frames.flux.append(features.flux[rhythm_core])
        frames.register.append(features.register[rhythm_core])
        frames.timbre.append(block_means(features.coarse[rhythm_core], RHYTHM_FPS // TIMBRE_FPS))
        frames.chord_features.append(chord_features[core_frames(chunk, len(chord_features), CHORD_FPS)])
        chroma_core = core_frames(chunk, len(chroma.treble), CHORD_FPS)
        frames.chroma.append(Chroma(chroma.bass[chroma_core], chroma.treble[chroma_core]))
        frames.key_spectrogram.append(key_spec[core_frames(chunk, len(key_spec), KEY_FPS)])

    def _music(self, results: Results, frames: _Frames, stage, report: Progress) -> None:
        activations = Activations(values=np.concatenate(frames.activations), fps=RHYTHM_FPS)
        with stage("chords"):
            chord_features = np.concatenate(frames.chord_features)
            chord_frames = self._chords.frames(chord_features)
        with stage("beats", 0.8):
            # The harmony decides how beats group into bars, and when the bars are twice the tracked length,
            # which level is the beat: tempo and everything built on the beats come after it.
            tracked = onto_the_bass(self._tracker(activations), np.concatenate(frames.register), activations,
                                    results.duration)
            regrouped = regroup(tracked, chord_segments(chord_frames), activations, self._min_bpm)
            beats = results.beats = without_holds(regrouped, activations)
            onsets = detect_onsets(np.concatenate(frames.flux), RHYTHM_FPS)
            results.transients = match_beats(beats.times, onsets)
            results.tempo = estimate_tempo(beats.times, beats.confidence)
            results.danceability = danceability(beats, results.tempo, results.transients)
        if len(beats.times) == 0:
            results.notes.append("no beat found")
        with stage("chords", 0.85):
            beat_chords = self._beat_chords(chord_features, chord_frames.posteriors, beats, results.duration)
            majmin = beat_chords or chord_segments(chord_frames)
            results.chords = majmin
        with stage("key", 0.9):
            # The key reads the majmin chords its chord-given-key table was built for.
            results.key = self._key(np.concatenate(frames.key_spectrogram), results.duration, self.networks.key,
                                    chords=majmin, downbeats=beats.times[beats.positions == 1],
                                    notes=notes_between(np.concatenate(frames.pitch_classes), SAMPLE_RATE))
        if beat_chords:
            with stage("chords"):
                # Full names come after the key: a richer chord's added tones are expected in the key's scale.
                chroma = Chroma.concatenate(frames.chroma)
                results.chords = name_chords(beat_chords, beat_grid(beats.times, results.duration), chroma.bass,
                                             chroma.treble, CHORD_FPS, results.key.segments if results.key else ())
        with stage("sections", 0.93):
            bars = bars_from_beats(beats, results.duration)
            if not bars:
                results.notes.append("no bars: no sections")
                return
            features = bar_features(np.array([b.start for b in bars]), np.array([b.end for b in bars]),
                                    harmony=chord_features, harmony_fps=CHORD_FPS,
                                    timbre=np.concatenate(frames.timbre), timbre_fps=TIMBRE_FPS,
                                    energy=results.energy, energy_fps=1.0 / ENERGY_HOP_S)
            results.sections, note = find_sections(features)
            if note:
                results.notes.append(note)


def average_tags(per_chunk: list[tuple[list[dict], float]]) -> list[dict]:
    """Each (model, label) score averaged over the chunks, weighted by their length; best first."""
    total = sum(seconds for _tags, seconds in per_chunk)
    scores: dict[tuple[str, str], float] = {}
    for tags, seconds in per_chunk:
        for tag in tags:
            key = (tag["model"], tag["label"])
            scores[key] = scores.get(key, 0.0) + tag["score"] * seconds / total
    merged = [{"label": label, "score": round(score, 4), "model": model} for (model, label), score in scores.items()]
    return sorted(merged, key=lambda tag: (-tag["score"], tag["model"], tag["label"]))


def _timed(chunks: Iterator[Chunk], stage, name: str) -> Iterator[Chunk]:
    """Count the time spent waiting for the decoder under its own stage."""
    while True:
        with stage(name):
            chunk = next(chunks, None)
        if chunk is None:
            return
        yield chunk
