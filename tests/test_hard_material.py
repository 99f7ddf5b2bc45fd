"""Failure classes of real recordings (issue 13), each reproduced by a short song rendered as bench/hard.py does."""

from __future__ import annotations

import json

import pytest

from bench import hard


@pytest.fixture
def render(tmp_path, monkeypatch):
    monkeypatch.setattr(hard, "SONGS_DIR", tmp_path)

    def _render(spec: hard.HardSpec) -> tuple:
        path = hard.render(spec)
        return path, json.loads(path.with_suffix(".truth.json").read_text())
    return _render


def _scores(analyzer, path, truth) -> dict:
    doc = analyzer.analyze(path)
    return hard.score(truth, doc["timeline"]["beats"], doc["summary"]["bpm"], doc["summary"]["meter"])


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
