"""The accuracy benchmark's own footing: rendered songs, their ground truth and the scoring.

If the truth did not line up with the audio, or the scores could not tell a
right timeline from a wrong one, every accuracy number would be meaningless.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bench.accuracy import MEASURES
from bench.compose import DRIFT, DRUMS, PPQ, break_bars, compose
from bench.scoring import confidence_items, key_change_recall, quartile_accuracy, score, tempo_curve_accuracy
from bench.songs import (
    FORMATS,
    QUICK_PICKS,
    Modulation,
    Song,
    SongSpec,
    Tempo,
    benchmark_suite,
    ci_suite,
    edge_cases,
    encode,
    ensure_suite,
    quick_subset,
    render_progression,
)
from bench.spec import STYLES, TEMPO_KINDS

SR = 44100
ONSET_TOLERANCE_S = 0.020
SEARCH_S = 0.050  # how far from the expected time an onset is looked for: wider than the tolerance
FRAME_S = 0.001


def decode(path: Path) -> np.ndarray:
    """Mono float samples at SR through ffmpeg, as beatwatch decodes every format."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-f", "f32le", "-ac", "1",
                          "-ar", str(SR), "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.float32)


def onsets_near(signal: np.ndarray, times: list[float]) -> np.ndarray:
    """For each time, the onset within ±SEARCH_S: where the 1 ms peak envelope of the next 5 ms
    rises most above that of the last 20 ms (a step detector, so a slow attack is found where it starts)."""
    frame = int(FRAME_S * SR)
    frame_s = frame / SR
    envelope = np.abs(signal[: len(signal) // frame * frame]).reshape(-1, frame).max(axis=1) + 1e-4
    before, after = 20, 5
    peaks_before = np.lib.stride_tricks.sliding_window_view(envelope, before).max(axis=1)
    peaks_after = np.lib.stride_tricks.sliding_window_view(envelope, after).max(axis=1)
    rise = np.zeros_like(envelope)
    count = len(envelope) - after + 1 - before
    rise[before:before + count] = peaks_after[before:before + count] / peaks_before[:count]
    found = []
    for time in times:
        low, high = int((time - SEARCH_S) / frame_s), int((time + SEARCH_S) / frame_s) + 1
        found.append((low + int(np.argmax(rise[low:high]))) * frame_s)
    return np.array(found)


@pytest.fixture(scope="module")
def songs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("songs")


@pytest.fixture(scope="module")
def ramp(songs_dir) -> Song:
    """Drums in 4/4, tempo ramping 150 -> 170 BPM: 40 beats through 160 tempo changes."""
    return render_progression(songs_dir, "i-VI-III-VII", tonic=9, bars=10, style="easy", melody=True,
                              tempo=Tempo("ramp", 150.0, 170.0))


@pytest.fixture(scope="module")
def waltz(songs_dir) -> Song:
    """A 12-bar 3/4 waltz at 150 BPM in D major with drums."""
    return render_progression(songs_dir, "I-IV-V-I", tonic=2, bpm=150, meter=3, bars=12, style="easy")


@pytest.fixture(scope="module")
def piano(songs_dir) -> Song:
    """C-Am-F-G on piano alone, stepping from 96 to 120 BPM: no drum hit marks the beat."""
    return render_progression(songs_dir, tempo=Tempo("step", 96.0, 120.0, step_bar=4))


def downbeats(song: Song) -> list[float]:
    return [b["time"] for b in song.truth()["timeline"]["beats"] if b["position"] == 1]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ramp", "waltz"])
def test_truth_downbeats_are_the_kicks_in_the_audio(name, request):
    song = request.getfixturevalue(name)
    truth = np.array(downbeats(song))
    errors = onsets_near(decode(song.audio), list(truth)) - truth
    assert np.all(np.abs(errors) <= ONSET_TOLERANCE_S), np.round(errors * 1000)


@pytest.mark.slow
def test_truth_beats_are_the_piano_chords_across_a_tempo_step(piano):
    truth = np.array([b["time"] for b in piano.truth()["timeline"]["beats"]])
    errors = onsets_near(decode(piano.audio), list(truth)) - truth
    assert np.all(np.abs(errors) <= ONSET_TOLERANCE_S), np.round(errors * 1000)


@pytest.mark.slow
def test_onset_check_rejects_truth_that_is_off_by_45_ms(ramp):
    shifted = np.array(downbeats(ramp)) + 0.045
    errors = onsets_near(decode(ramp.audio), list(shifted)) - shifted
    assert np.mean(np.abs(errors) <= ONSET_TOLERANCE_S) < 0.2


@pytest.mark.slow
def test_every_format_decodes_to_the_truth_duration_and_keeps_the_beats(waltz, tmp_path):
    truth = waltz.truth()
    expected = np.array(downbeats(waltz))
    for fmt in FORMATS:
        encoded = tmp_path / f"waltz.{fmt}"
        encode(waltz.audio, encoded)
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                                str(encoded)], capture_output=True, text=True, check=True)
        assert float(probe.stdout) == pytest.approx(truth["duration"], abs=0.05), fmt
        errors = onsets_near(decode(encoded), list(expected)) - expected
        assert np.all(np.abs(errors) <= ONSET_TOLERANCE_S), (fmt, np.round(errors * 1000))


@pytest.mark.slow
def test_ground_truth_describes_the_song(waltz, ramp):
    truth = waltz.truth()
    assert truth["summary"] == {"bpm": 150.0, "meter": 3, "key": "D major"}
    assert truth["music"]["bars"] == 12 and len(truth["timeline"]["beats"]) == 36
    assert truth["timeline"]["beats"][0]["time"] == pytest.approx(0.5)
    assert np.allclose(np.diff([b["time"] for b in truth["timeline"]["beats"]]), 0.4)
    assert [c["label"] for c in truth["timeline"]["chords"][:4]] == ["D:maj", "G:maj", "A:maj", "D:maj"]
    assert truth["duration"] == pytest.approx(truth["music"]["end"] + 1.0, abs=1e-4)
    curve = ramp.truth()["timeline"]["tempo"]
    assert curve[0]["bpm"] == pytest.approx(150.06, abs=0.01) and curve[-1]["bpm"] == pytest.approx(169.94, abs=0.01)


@pytest.mark.slow
def test_truth_scores_one_against_itself(waltz, ramp, piano):
    for song in (waltz, ramp, piano):
        truth = song.truth()
        metrics = score(truth, truth)
        assert metrics == pytest.approx({key: 1.0 for key in metrics}), song.name
    assert {"tempo_acc1", "meter", "chord_majmin", "bar_chord", "key_mirex"} <= set(score(waltz.truth(), waltz.truth()))
    assert "tempo_curve" in score(ramp.truth(), ramp.truth())


@pytest.mark.slow
def test_shifted_beats_score_lower(waltz):
    truth = waltz.truth()
    shifted = copy.deepcopy(truth)
    for beat in shifted["timeline"]["beats"]:
        beat["time"] += 0.1
    metrics = score(truth, shifted)
    assert metrics["beat_f"] == 0.0 and metrics["downbeat_f"] == 0.0


@pytest.mark.slow
def test_half_tempo_scores_lower(ramp, waltz):
    for song in (ramp, waltz):
        truth = song.truth()
        half = copy.deepcopy(truth)
        half["timeline"]["beats"] = truth["timeline"]["beats"][::2]
        half["summary"]["bpm"] /= 2
        for point in half["timeline"]["tempo"]:
            point["bpm"] /= 2
        metrics = score(truth, half)
        assert metrics["beat_f"] == pytest.approx(2 / 3, abs=0.05)
        assert metrics.get("tempo_acc1", 0.0) == 0.0 and metrics.get("tempo_curve", 0.0) == 0.0


@pytest.mark.slow
def test_missing_sidecar_parts_score_zero(waltz):
    assert set(score(waltz.truth(), {}).values()) == {0.0}


def test_step_curve_and_key_change_scoring():
    step = [{"time": 0.5, "bpm": 100.0}, {"time": 9.999, "bpm": 100.0}, {"time": 10.0, "bpm": 130.0}]
    assert tempo_curve_accuracy(step, step, 0.5, 20.0) == 1.0
    assert tempo_curve_accuracy(step, [{"time": 0.0, "bpm": 100.0}], 0.5, 20.0) == pytest.approx(9.5 / 19.5)
    keys = [{"start": 0.0, "end": 11.0, "key": "C major"}, {"start": 11.0, "end": 20.0, "key": "D major"}]
    assert key_change_recall([10.0], [3.2], keys) == 1.0
    assert key_change_recall([10.0], [0.5], keys) == 0.0
    assert key_change_recall([10.0], [3.2], keys[:1]) == 0.0


@pytest.mark.slow
def test_cached_songs_are_not_rendered_again(waltz, songs_dir):
    before = waltz.audio.stat().st_mtime_ns
    (again,) = ensure_suite(songs_dir, [waltz.spec])
    assert again.audio == waltz.audio and again.audio.stat().st_mtime_ns == before


def test_suite_spreads_keys_tempi_meters_and_formats():
    specs = benchmark_suite()
    assert len({(s.tonic, s.mode) for s in specs}) == 24
    assert len({s.name for s in specs}) == len(specs)
    bpms = [s.tempo.bpm for s in specs]
    assert 70 <= min(bpms) < 80 and 170 < max(bpms) <= 180
    assert {s.tempo.kind for s in specs} == set(TEMPO_KINDS)
    assert {s.meter for s in specs} == {3, 4} and {s.style for s in specs} == set(STYLES)
    assert {s.format for s in specs} == set(FORMATS)
    assert sum(1 for s in specs if s.modulation) >= 8 and any(s.changes_per_bar == 2 for s in specs)
    assert benchmark_suite() == specs and specs[-len(edge_cases()):] == edge_cases()
    fast_waltzes = [s for s in specs if s.meter == 3 and s.tempo.bpm >= 165]
    ballads = [s for s in specs if s.meter == 4 and s.tempo.bpm <= 75]
    assert len(fast_waltzes) >= 3 and len(ballads) >= 3
    quick = quick_subset(specs)
    assert len(quick) == len(QUICK_PICKS) and {s.tempo.kind for s in quick} == set(TEMPO_KINDS)


def _spec(**changes) -> SongSpec:
    fields = dict(name="t", tempo=Tempo.steady(120.0), meter=4, tonic=0, mode="major", progression="I-V-vi-IV",
                  instrument="piano", bars=24, style="easy")
    return SongSpec(**{**fields, **changes})


def test_drum_breaks_leave_whole_bars_without_drums():
    spec = _spec(style="breaks")
    silent = break_bars(spec)
    assert len(silent) == 8 and 0 not in silent and spec.bars - 1 not in silent
    bars_with_drums = {(n.tick - PPQ) // (spec.meter * PPQ) for n in compose(spec).notes if n.channel == DRUMS}
    assert bars_with_drums == set(range(spec.bars)) - silent


def test_swing_and_syncopation_put_notes_off_the_straight_grid():
    def offsets(style):
        return {(n.tick - PPQ) % PPQ for n in compose(_spec(style=style)).notes}
    assert PPQ * 2 // 3 in offsets("swing") and PPQ // 2 not in offsets("swing")
    assert PPQ // 2 in offsets("syncopated") and PPQ * 3 // 4 in offsets("syncopated")
    assert offsets("easy") <= {0, PPQ // 2}


def test_drift_wanders_both_ways_up_to_its_bound():
    tempo_map = compose(_spec(tempo=Tempo("drift", 100.0, 100.0))).tempo_map
    departures = np.array([60e6 / us for tick, us in tempo_map if tick >= PPQ]) / 100.0 - 1.0
    assert np.abs(departures).max() == pytest.approx(DRIFT, rel=0.02)
    assert departures.max() - departures.min() > DRIFT


def test_a_modulation_starts_the_progression_again_on_the_new_tonic():
    spec = _spec(progression="i-iv-v", mode="minor", tonic=7, bars=10, modulation=Modulation(5, 9))
    labels = [c.label for c in compose(spec).chords]
    assert labels == ["G:min", "C:min", "D:min", "G:min", "C:min", "A:min", "D:min", "E:min", "A:min", "D:min"]


def test_confidence_quartiles_compare_the_least_and_most_confident():
    items = [(c, float(c > 0.5), 1.0) for c in np.linspace(0, 1, 40)]
    assert quartile_accuracy(items) == (0.0, 1.0)
    assert quartile_accuracy(items[:3]) is None


@pytest.mark.slow
def test_benchmark_subset_meets_the_minimums(analyzer, tmp_path_factory):
    """Six short songs, one per hard case, analysed as the benchmark does: every measure's mean over them meets
    the benchmark's minimum, so CI catches an accuracy regression without running the whole suite."""
    songs = ensure_suite(tmp_path_factory.mktemp("ci-songs"), ci_suite())
    results = []
    for song in songs:
        sidecar = analyzer.analyze(song.audio)
        results.append(score(song.truth(), sidecar))
        assert confidence_items(song.truth(), sidecar)["beats"], song.name
    for measure in MEASURES:
        values = [r[measure.key] for r in results if measure.key in r]
        assert values, measure.key
        if measure.minimum is not None:
            mean = sum(values) / len(values)
            assert mean >= measure.minimum, (measure.key, [round(v, 3) for v in values])
