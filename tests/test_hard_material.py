"""Failure classes of real recordings (issue 13), each reproduced by a short song rendered as bench/hard.py does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import hard


@pytest.fixture
def render(tmp_path, monkeypatch):
    monkeypatch.setattr(hard, "SONGS_DIR", tmp_path)

    def _render(spec: hard.HardSpec) -> tuple:
        path = hard.render(spec)
        return path, json.loads(path.with_suffix(".truth.json").read_text())
    return _render


def _score(truth: dict, doc: dict) -> dict:
    return hard.score(truth, doc["timeline"]["beats"], doc["summary"]["bpm"], doc["summary"]["meter"])


def _scores(analyzer, path, truth) -> dict:
    return _score(truth, analyzer.analyze(path))


@pytest.mark.parametrize("spec", [hard.HardSpec("ballad", 62.0, 4, 0, 24, 6, 1),
                                  hard.HardSpec("ballad", 80.0, 4, 9, 25, 6, 4, fast_picking=True)],
                         ids=lambda s: s.name)
def test_a_picked_ballad_heard_in_eighths_gets_its_slow_beat_and_bars(analyzer, render, spec):
    """The network hears only the picking's eighths; chords and bass accents every other tracked bar line say
    the bar, and so the beat, is twice as long."""
    scores = _scores(analyzer, *render(spec))
    assert scores["tempo_acc1"] == 1.0
    assert scores["beat_f"] >= 0.95
    assert scores["downbeat_f"] >= 0.9


def test_the_slow_beat_is_not_taken_below_the_configured_tempo_range(analyzer, render):
    """analysis.min_bpm = 100: the picked 62 BPM ballad stays at the eighths the tracker heard (124 BPM)."""
    from beatwatch.analysis.pipeline import Analyzer

    path, truth = render(hard.HardSpec("ballad", 62.0, 4, 0, 24, 6, 1))
    doc = Analyzer(analyzer.networks, min_bpm=100.0).analyze(path)
    assert doc["summary"]["bpm"] == pytest.approx(124.0, rel=0.03)


def test_bars_after_a_two_beat_and_a_six_beat_bar_follow_the_harmony(analyzer, render):
    """A kit hitting beats 1 and 3 alike lets the network carry the old bar phase past a 2-beat bar; the chord
    changing once a bar, on its downbeat, moves the bar line back where it belongs."""
    scores = _scores(analyzer, *render(hard.HardSpec("irregular", 104.0, 4, 4, 0, 12, 15)))
    assert scores["downbeat_f"] >= 0.95
    assert scores["beat_f"] >= 0.95


def test_chords_on_every_and_over_a_bass_on_one_and_three_keep_the_full_tempo(analyzer, render):
    """Nothing sounds on beats 2 and 4, so the tracker settles on the bass at half tempo; the network's
    activation on the "ands" (a quarter and three quarters through each tracked beat, none half way) says each
    tracked beat is two."""
    scores = _scores(analyzer, *render(hard.HardSpec("offbeat", 128.0, 4, 0, 16, 8, 10)))
    assert scores["tempo_acc1"] == 1.0
    assert scores["beat_f"] >= 0.95
    assert scores["downbeat_f"] >= 0.9


def test_piano_stabs_on_every_and_over_a_bass_on_one_and_three_are_the_off_beats(analyzer, render):
    """The network fires on the stabs and the tracker follows it; the sound half way between them enters an
    octave lower (the bass), which is where the beat is."""
    scores = _scores(analyzer, *render(hard.HardSpec("offbeat", 96.0, 4, 7, 0, 8, 8)))
    assert scores["beat_f"] >= 0.95
    assert scores["downbeat_f"] >= 0.9
    assert scores["tempo_acc1"] == 1.0


def test_a_short_excerpt_whose_kit_accents_the_wrong_beats_takes_its_bars_from_the_chords(analyzer, render):
    """Eight bars, snare on 1 and 3 and kick on 2 and 4: the network puts the bar line a beat late; the chord
    changing on each bar line (seven changes) puts it back (with eight changes required it stayed late)."""
    scores = _scores(analyzer, *render(hard.HardSpec("backbeat", 100.0, 4, 4, 4, 8, 21)))
    assert scores["downbeat_f"] >= 0.9
    assert scores["beat_f"] >= 0.95


def _ritardando_grid(spec: hard.HardSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Every four-bar phrase slows over its last two bars to about half tempo, under the tracker's range."""
    positions = np.concatenate([np.arange(1, n + 1) for n in hard.bar_lengths(spec)])
    phrase = 4 * spec.meter
    slowing = np.clip((np.arange(len(positions)) % phrase - 2 * spec.meter) / (2 * spec.meter), 0, None)
    period = 60.0 / spec.bpm * (1 + slowing ** 1.5) * rng.normal(1.0, 0.02, len(positions))
    return hard.LEAD_IN_S + np.concatenate([[0.0], np.cumsum(period[:-1])]), positions


def test_phrases_slowing_to_half_tempo_keep_the_song_tempo(analyzer, render, monkeypatch):
    """The ritardandos go below the slowest tempo the tracker follows, so it takes the eighths for a phrase
    and the quarters for the rest: the song's tempo is the quarters', not the median of both (104 for 82)."""
    monkeypatch.setattr(hard, "beat_grid", _ritardando_grid)
    scores = _scores(analyzer, *render(hard.HardSpec("rubato", 84.0, 4, 9, 0, 12, 102)))
    assert scores["tempo_acc1"] == 1.0


def test_beats_with_a_hi_hat_between_them_stay_where_they_are():
    """The rule's other side, on onsets built by hand: when the sound between the beats sits higher (a hi-hat
    or picking between bass-and-chord beats) or hardly sounds, the tracked beats are the beats."""
    from beatwatch.analysis.rhythm.offbeat_phase import bass_between_beats

    fps, period = 100, 50
    register = np.zeros((40 * period, 2))
    beats = np.arange(1, 38) * period

    def sound(frames, rise, log2_hz):
        register[frames] = [rise, rise * log2_hz]
    sound(beats, 1.0, np.log2(400.0))
    sound(beats + period // 2, 0.5, np.log2(100.0))
    assert bass_between_beats(register, beats / fps, fps)
    sound(beats + period // 2, 0.5, np.log2(3000.0))
    assert not bass_between_beats(register, beats / fps, fps)
    sound(beats + period // 2, 0.1, np.log2(100.0))
    assert not bass_between_beats(register, beats / fps, fps)


@pytest.mark.parametrize("spec", [hard.HardSpec("fermata", 76.0, 4, 2, 24, 9, 19),
                                  hard.HardSpec("fermata", 88.0, 3, 9, 0, 9, 20)], ids=lambda s: s.name)
def test_no_beats_are_counted_over_a_held_chord(analyzer, render, spec):
    """The fourth bar ends on a chord held for seconds while notes roll out of time: the tracker keeps counting
    over it, and those beats, on silence or on the rolled notes, are dropped."""
    path, truth = render(spec)
    doc = analyzer.analyze(path)
    times = np.array([b["time"] for b in truth["beats"]])
    held = np.flatnonzero(np.diff(times) > 3.0)
    assert len(held) == 2
    beats = np.array([b["time"] for b in doc["timeline"]["beats"]])
    for i in held:
        assert not ((beats > times[i] + 0.2) & (beats < times[i + 1] - 0.2)).any()
    scores = _score(truth, doc)
    assert scores["beat_f"] >= 0.95
    assert scores["downbeat_f"] >= 0.9
    assert scores["tempo_acc1"] == 1.0


def test_a_pickup_before_the_first_bar_is_numbered_as_the_end_of_a_bar(analyzer, render):
    """Two beats of the last chord and the kit lead into bar 1: they are beats 3 and 4 of bar 0, and the bars
    count from the first downbeat."""
    path, truth = render(hard.HardSpec("pickup", 96.0, 4, 7, 0, 8, 25))
    doc = analyzer.analyze(path)
    first = [(b["bar"], b["position"]) for b in doc["timeline"]["beats"][:3]]
    assert first == [(0, 3), (0, 4), (1, 1)]
    scores = _score(truth, doc)
    assert scores["downbeat_f"] >= 0.95
