"""Beats, downbeats, meter, tempo and transients against click tracks with known truth."""

from __future__ import annotations

import mir_eval
import numpy as np
import pytest

from beatwatch.analysis.nearest import nearest
from beatwatch.analysis.rhythm.beats import Activations, BeatTracker
from beatwatch.analysis.rhythm.tempo import estimate_tempo, local_tempo
from beatwatch.analysis.rhythm.transients import Onsets, match_beats
from tests.helpers import click_track, write_wav


@pytest.mark.parametrize("bpm,meter", [(96, 4), (128, 4), (150, 3)])
def test_click_track_beats_meter_and_tempo(analyzer, media, bpm, meter):
    signal, truth = click_track(bpm, meter=meter, seconds=24.0)
    doc = analyzer.analyze(write_wav(media / f"click{bpm}.wav", signal))
    beats = np.array([b["time"] for b in doc["timeline"]["beats"]])
    assert mir_eval.beat.f_measure(truth, beats) >= 0.95
    assert doc["summary"]["bpm"] == pytest.approx(bpm, rel=0.02)
    assert doc["summary"]["meter"] == meter
    downbeats = np.array([b["time"] for b in doc["timeline"]["beats"] if b["position"] == 1])
    assert mir_eval.beat.f_measure(truth[::meter], downbeats) >= 0.9


def test_transients_sit_on_the_clicks(analyzer, media):
    signal, truth = click_track(110, seconds=15.0)
    doc = analyzer.analyze(write_wav(media / "transients.wav", signal))
    marked = [(b["time"], b["transient_time"], b["transient_strength"]) for b in doc["timeline"]["beats"]]
    matched = [(t, tt, s) for t, tt, s in marked if tt is not None]
    assert len(matched) >= 0.9 * len(marked)
    errors = [np.min(np.abs(truth - tt)) for _, tt, _ in matched]
    assert np.median(errors) <= 0.012
    assert all(0.0 < s <= 1.0 for _, _, s in matched)


def test_match_beats_picks_nearest_onset_within_radius():
    onsets = Onsets(times=np.array([0.98, 1.5, 2.2]), strengths=np.array([0.9, 0.4, 0.7]))
    matched = match_beats(np.array([1.0, 1.52, 3.0]), onsets, radius_s=0.07)
    assert matched.times[:2].tolist() == [0.98, 1.5]
    assert np.isnan(matched.times[2]) and matched.strengths[2] == 0.0
    assert matched.strengths[:2].tolist() == [0.9, 0.4]


def test_nearest_takes_the_closer_time_and_the_earlier_on_a_tie():
    grid = np.array([1.0, 2.0, 4.0])
    assert nearest(grid, np.array([-5.0, 1.4, 1.6, 3.0, 3.2, 9.0])).tolist() == [0, 0, 1, 1, 2, 2]
    assert nearest(np.array([2.5]), np.array([0.0, 2.5, 7.0])).tolist() == [0, 0, 0]
    assert nearest(grid, np.zeros(0)).tolist() == []


def test_tempo_curve_follows_a_step_and_a_ramp():
    step = np.concatenate([np.arange(0, 20, 0.5), 20 + np.arange(0, 20, 60 / 150)])
    curve = local_tempo(step)
    assert curve[5] == pytest.approx(120, rel=0.01)
    assert curve[-5] == pytest.approx(150, rel=0.01)
    intervals = 60 / np.linspace(100, 130, 80)
    ramp = np.concatenate([[0], np.cumsum(intervals)])
    tempo = estimate_tempo(ramp, np.ones(len(ramp)))
    assert tempo.curve_bpm[10] == pytest.approx(100 + 30 * 10 / 80, rel=0.02)
    assert tempo.curve_bpm[70] == pytest.approx(100 + 30 * 70 / 80, rel=0.02)
    assert tempo.confidence < 0.5, "a ramp is not a steady tempo"


def test_steady_tempo_is_confident():
    beats = np.arange(0, 30, 0.5)
    tempo = estimate_tempo(beats, np.full(len(beats), 0.9))
    assert tempo.bpm == pytest.approx(120)
    assert tempo.confidence == pytest.approx(0.9)


def test_activations_round_trip_through_npz(tmp_path):
    values = np.random.default_rng(0).random((500, 2)).astype(np.float32)
    Activations(values=values).save(tmp_path / "act.npz")
    loaded = Activations.load(tmp_path / "act.npz")
    assert loaded.fps == 100 and np.array_equal(loaded.values, values)


def test_tracker_finds_nothing_in_flat_activations():
    beats = BeatTracker()(Activations(values=np.zeros((1000, 2), dtype=np.float32)))
    assert len(beats.times) == 0 and beats.meter is None


def test_steady_clicks_are_more_danceable_than_irregular_bursts(analyzer, media):
    steady, _ = click_track(120, seconds=20.0)
    rng = np.random.default_rng(3)
    bursts = np.zeros_like(steady)
    for t in np.sort(rng.uniform(0.5, 19.0, 30)):
        i = int(t * 44100)
        bursts[i:i + 3000] += rng.standard_normal(3000).astype(np.float32) * np.exp(-np.arange(3000) / 400)
    bursts = (0.5 * bursts / np.abs(bursts).max()).astype(np.float32)
    steady_doc = analyzer.analyze(write_wav(media / "dance_steady.wav", steady))
    bursts_doc = analyzer.analyze(write_wav(media / "dance_bursts.wav", bursts))
    assert steady_doc["summary"]["danceability"] > 0.6
    assert bursts_doc["summary"]["danceability"] < steady_doc["summary"]["danceability"] - 0.2


def test_features_equal_madmoms_own_preprocessing():
    """The vectorised chain must feed the network exactly what madmom's processors would."""
    from madmom.audio.signal import Signal
    from madmom.features.downbeats import RNNDownBeatProcessor

    from beatwatch.analysis.audio.features import RhythmFeatureProcessor

    signal, _ = click_track(117, seconds=8.0)
    reference = RNNDownBeatProcessor().processors[0](Signal(signal, sample_rate=44100, num_channels=1))
    ours = RhythmFeatureProcessor()(signal, 44100).stacked
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < 1e-4


def test_refining_moves_beats_to_the_activation_peak():
    from beatwatch.analysis.rhythm.beats import refine_to_peaks

    activation = np.zeros(100)
    activation[[11, 48, 99]] = [0.9, 0.8, 0.7]
    assert refine_to_peaks(activation, np.array([0.10, 0.50, 0.98]), 100, radius=2).tolist() == [0.11, 0.48, 0.99]


def _bar_activations(bar_lengths: list[int], *, beat_s: float = 0.5, lead_in: float = 0.5):
    """Network-like activations of bars with the given beat counts: (Activations, beat times, positions)."""
    positions = np.concatenate([np.arange(1, n + 1) for n in bar_lengths])
    times = lead_in + beat_s * np.arange(len(positions))
    values = np.full((int((times[-1] + 1.0) * 100), 2), 0.01, dtype=np.float32)
    for time, position in zip(times, positions):
        frame = int(round(time * 100))
        # As the network hears a plain accent: a sure beat, a downbeat only somewhat more likely than not.
        values[frame - 1:frame + 2] = [0.4, 0.5] if position == 1 else [0.9, 0.02]
    return Activations(values=values), times, positions


def test_bars_after_an_irregular_bar_before_a_decoding_seam_recover():
    """A 2-beat bar just before the first window seam (110 s) moves the downbeat; bars after it must follow."""
    bar_lengths = [4] * 53 + [2] + [4] * 44  # the 2-beat bar starts at 106.5 s; 4/4 at 120 BPM, ~196 s in all
    activations, times, positions = _bar_activations(bar_lengths)
    beats = BeatTracker()(activations)
    assert mir_eval.beat.f_measure(times, beats.times) > 0.99
    after = times > 112.0
    nearest = np.abs(beats.times[None, :] - times[after, None]).argmin(axis=1)
    right = beats.positions[nearest] == positions[after]
    assert np.mean(right) >= 0.98, "bar positions after the seam follow the music, not the count before it"
    assert beats.meter == 4


def test_a_short_clip_of_four_beats_gets_beats_and_tempo(analyzer, media):
    """2.8 s with four clear beats at 87.5 BPM (a loop, a jingle) is music: beats and tempo, not 'too short'."""
    signal, truth = click_track(87.5, seconds=2.8, lead_in=0.2)
    assert len(truth) == 4
    doc = analyzer.analyze(write_wav(media / "short_loop.wav", signal))
    beats = np.array([b["time"] for b in doc["timeline"]["beats"]])
    assert len(beats) >= 3
    assert all(np.min(np.abs(beats - t)) <= 0.07 for t in truth[1:])
    assert doc["summary"]["bpm"] == pytest.approx(87.5, rel=0.04)


def _pulse_activations(period: float, seconds: float, between: float) -> Activations:
    """A steady pulse the network is sure of (bars of four), and `between` activation half way between pulses."""
    values = np.full((int(seconds * 100), 2), 0.01, dtype=np.float32)
    for i, time in enumerate(np.arange(0.5, seconds - 0.5, period / 2)):
        frame = int(round(time * 100))
        if i % 2:
            values[frame - 1:frame + 2, 0] = between
        else:
            values[frame - 1:frame + 2] = [0.4, 0.5] if i % 8 == 0 else [0.9, 0.02]
    return Activations(values=values)


@pytest.mark.parametrize("between,bpm", [(0.02, 156.0), (0.35, 78.0)])
def test_a_fast_level_under_a_fast_tracked_level_moves_the_beat_to_a_moderate_tempo(between, bpm):
    """Running sixteenths under eighths at 156 BPM (an expressive choro guitar): the beat is the quarter at 78.

    Without the faster level the 156 BPM pulse is the beat: a fast song stays fast."""
    beats = BeatTracker()(_pulse_activations(60 / 156, 30.0, between))
    assert estimate_tempo(beats.times, beats.confidence).bpm == pytest.approx(bpm, rel=0.03)
    strong = 0.5 + np.arange(0, 29, 60 / 156)
    assert all(np.min(np.abs(strong - t)) <= 0.03 for t in beats.times), "the beats sure of themselves are kept"


def test_every_other_beat_keeps_the_stronger_beats_and_the_bar_lines():
    from beatwatch.analysis.rhythm.beats import every_other_beat

    times = np.arange(24) * 0.4
    positions = np.arange(24) % 4 + 1
    share = np.where(np.arange(24) % 2 == 1, 0.7, 0.3)  # the odd beats are the strong ones
    kept, bars = every_other_beat(times, positions, share)
    assert np.allclose(kept, times[1::2])
    assert bars.tolist() == [1, 2] * 6, "a bar line on a dropped beat moves to the beat after it"


def test_a_two_beat_bar_moves_the_bar_line_for_the_bars_after_it():
    from beatwatch.analysis.rhythm.bar_phase import bar_positions

    truth = np.concatenate([np.arange(1, 5)] * 6 + [np.arange(1, 3)] + [np.arange(1, 5)] * 8)
    downbeat = np.where(truth == 1, 0.6, 0.2)  # an accent the network is only fairly sure of
    assert bar_positions(downbeat, 4).tolist() == truth.tolist()


def test_pickup_beats_keep_their_place_before_the_first_bar_line():
    """A song opening on beat 3: the two beats before bar 1 are 3 and 4, whatever bar length is decoded."""
    from beatwatch.analysis.rhythm.bar_phase import bar_positions

    truth = np.concatenate([[3, 4]] + [np.arange(1, 5)] * 6)
    downbeat = np.where(truth == 1, 0.6, 0.2)
    assert bar_positions(downbeat, 4, start=2).tolist() == truth.tolist()
    waltz = np.concatenate([[3]] + [np.arange(1, 4)] * 6)
    assert bar_positions(np.where(waltz == 1, 0.6, 0.2), 3, start=5).tolist() == waltz.tolist()


@pytest.mark.parametrize("every_bar,accented,expected", [(False, True, 4), (True, True, None), (False, False, None)])
def test_bars_twice_the_tracked_length_need_the_harmony_and_the_accent(every_bar, accented, expected):
    """Chords changing on one tracked bar line in two, heard harder there: the real bar starts on it. Chords
    that last two bars over evenly accented bars are not enough, nor is an accent alone."""
    from beatwatch.analysis.rhythm.octave import longer_bar_start

    index = np.arange(48)
    real = index % 8 == 4
    change = np.where(index % 4 == 0 if every_bar else real, 0.9, 0.0)
    accent = np.where(real & accented, 0.6, np.where(index % 4 == 0, 0.35, 0.02))
    assert longer_bar_start(change, accent, first_downbeat=0, meter=4) == expected
