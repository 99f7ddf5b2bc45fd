"""The assembler, fed with results (and saved activations) instead of audio."""

from __future__ import annotations

import json

import numpy as np
import pytest

from beatwatch.analysis.audio.decode import AudioInfo
from beatwatch.analysis.harmony.chords import ChordSegment
from beatwatch.analysis.loudness import Loudness
from beatwatch.analysis.rhythm.beats import Activations, BeatTracker, Beats
from beatwatch.analysis.rhythm.tempo import estimate_tempo
from beatwatch.analysis.document import SCHEMA
from beatwatch.analysis.timeline import Results, assemble, bar_chord, bars_from_beats, top_k
from beatwatch.analysis.rhythm.transients import BeatTransients

INFO = AudioInfo(path="/music/waltz.flac", size=1000, format="flac", duration=14.0, sample_rate=48000, channels=2)


def waltz_beats() -> Beats:
    """A two-beat pickup, then four bars of 3/4 at 120 BPM."""
    times = np.arange(14) * 0.5 + 0.5
    positions = np.array([2, 3] + [1, 2, 3] * 4)
    return Beats(times=times, positions=positions, confidence=np.full(14, 0.8))


def results(beats: Beats) -> Results:
    chords = [ChordSegment(0.0, 2.5, "D:maj", 0.9), ChordSegment(2.5, 4.0, "A:maj", 0.8),
              ChordSegment(4.0, 8.0, "B:min", 0.7)]
    momentary = np.full(140, -20.0)
    return Results(
        info=INFO, content_hash="ab" * 32, duration=14.0,
        loudness=Loudness(integrated_lufs=-20.0, range_lu=1.0, momentary=momentary),
        energy=np.full(28, 0.5), beats=beats,
        transients=BeatTransients(times=np.where(np.arange(14) % 2, np.nan, beats.times + 0.01),
                                  strengths=np.where(np.arange(14) % 2, 0.0, 0.7)),
        tempo=estimate_tempo(beats.times, beats.confidence), chords=chords,
    )


def test_pickup_is_bar_zero_and_bars_count_from_the_first_downbeat():
    bars = bars_from_beats(waltz_beats(), 14.0)
    assert [b.number for b in bars] == [0, 1, 2, 3, 4]
    assert [b.beat_count for b in bars] == [2, 3, 3, 3, 3]
    assert bars[1].start == 1.5 and bars[1].end == 3.0
    assert bars[-1].end == pytest.approx(7.5)


def test_bar_chord_takes_the_majority_label():
    chords = results(waltz_beats()).chords
    assert bar_chord(chords, 1.5, 3.0) == ("D:maj", pytest.approx(0.9 * 1.0 / 1.5))
    assert bar_chord(chords, 3.0, 4.5)[0] == "A:maj"
    assert bar_chord([], 0.0, 1.0) == (None, None)


def test_document_has_every_schema_field_and_is_json():
    doc = assemble(results(waltz_beats()), analyzer={"version": "t", "device": "cpu", "analyses": {}},
                   performance={"wall_s": 1.0, "realtime_factor": 14.0, "stages": {}})
    doc = json.loads(json.dumps(doc))
    assert doc["schema"] == SCHEMA
    assert set(doc["file"]) >= {"path", "content_hash", "size", "format", "duration", "sample_rate", "channels"}
    assert set(doc["summary"]) >= {"bpm", "bpm_confidence", "meter", "key", "key_confidence", "loudness_lufs",
                                   "loudness_range_lu", "danceability", "energy", "tags"}
    assert set(doc["timeline"]) >= {"beats", "bars", "chords", "tempo", "keys", "energy", "sections"}
    assert doc["timeline"]["sections"] == [] and all(b["section"] is None for b in doc["timeline"]["bars"])
    beats = doc["timeline"]["beats"]
    assert [b["bar"] for b in beats[:5]] == [0, 0, 1, 1, 1]
    assert beats[0]["transient_time"] == pytest.approx(0.51) and beats[1]["transient_time"] is None
    assert doc["summary"]["meter"] == 3 and doc["summary"]["bpm"] == pytest.approx(120.0)
    bar1 = doc["timeline"]["bars"][1]
    assert bar1["chord"] == "D:maj" and bar1["loudness"] == pytest.approx(-20.0)
    assert doc["timeline"]["energy"]["hop_s"] == 0.5 and len(doc["timeline"]["energy"]["values"]) == 28


def test_saved_activations_decode_to_the_same_bars(tmp_path):
    """Activations from a file analysed once can be decoded again without audio."""
    fps, bpm = 100, 120
    values = np.zeros((1600, 2), dtype=np.float32)
    for i, frame in enumerate(range(50, 1550, 50)):
        values[frame - 1:frame + 2, 0 if i % 4 else 1] = [0.3, 0.9, 0.3]
    Activations(values=values, fps=fps).save(tmp_path / "act.npz")
    beats = BeatTracker()(Activations.load(tmp_path / "act.npz"))
    assert beats.meter == 4
    assert np.allclose(np.diff(beats.times), 60 / bpm, atol=0.02)
    bars = bars_from_beats(beats, 16.0)
    assert bars[0].number == 1 and bars[0].start == pytest.approx(0.5, abs=0.02)
    assert all(b.beat_count == 4 for b in bars[:-1])


def test_top_k_keeps_the_best_of_each_model():
    tags = [{"label": str(i), "score": i / 10, "model": model} for model in ("a", "b") for i in range(5)]
    best = top_k(tags, 2)
    assert [(tag["model"], tag["label"]) for tag in best] == [("a", "4"), ("b", "4"), ("a", "3"), ("b", "3")]
