"""Sections: from saved bar features without decoding, through the assembler, and from a rendered song."""

from __future__ import annotations

import json

import numpy as np
import pytest

from beatwatch.analysis.audio.decode import AudioInfo
from beatwatch.analysis.form.bar_features import BarFeatures, bar_features, block_means, pool
from beatwatch.analysis.form.sections import MAX_BARS, MIN_SONG_BARS, Section, find_sections, letter_name
from beatwatch.analysis.loudness import Loudness
from beatwatch.analysis.rhythm.beats import Beats
from beatwatch.analysis.rhythm.transients import BeatTransients
from beatwatch.analysis.timeline import Results, assemble
from tests.helpers import FORM, SR, encode, form_song, write_wav

# (label, letter, bars) of the song the saved features describe.
SONG = (("intro", "A", 4), ("verse", "B", 8), ("chorus", "C", 8), ("verse", "B", 8), ("chorus", "C", 8),
        ("bridge", "D", 4), ("chorus", "C", 8), ("outro", "E", 4))
# Per letter: how loud, and whether the drums play.
LEVEL = {"A": 0.3, "B": 0.5, "C": 0.9, "D": 0.45, "E": 0.3}


def song_features(form=SONG, seed: int = 0) -> BarFeatures:
    """Bar features as the pipeline pools them: each letter loops its own 4 chords (one a bar), has its own
    sound and level, and every bar adds noise, so repeats are alike but never equal."""
    rng = np.random.default_rng(seed)
    letters = sorted({letter for _l, letter, _n in form})
    loops = {letter: rng.standard_normal((4, 128)) for letter in letters}
    colours = {letter: rng.standard_normal(54) for letter in letters}
    harmony, timbre, energy = [], [], []
    for _label, letter, bars in form:
        for b in range(bars):
            harmony.append(loops[letter][b % 4] + 0.3 * rng.standard_normal(128))
            timbre.append(colours[letter] + 0.3 * rng.standard_normal(54))
            energy.append(LEVEL[letter] + 0.02 * rng.standard_normal())
    return BarFeatures(harmony=np.array(harmony), timbre=np.array(timbre), energy=np.array(energy))


def starts_of(form) -> list[int]:
    return list(np.cumsum([0] + [bars for *_, bars in form])[:-1])


def same_grouping(found: list[str], expected: list[str]) -> bool:
    """Letters group the same sections together, whatever the letters are called."""
    return [found.index(x) for x in found] == [expected.index(x) for x in expected]


def test_saved_bar_features_give_the_form_with_its_repeats_and_names():
    sections, note = find_sections(song_features())
    assert note is None
    assert [s.first for s in sections] == starts_of(SONG)
    assert sections[-1].stop == sum(bars for *_, bars in SONG)
    assert same_grouping([s.letter for s in sections], [letter for _l, letter, _n in SONG])
    assert [s.letter for s in sections][:3] == ["A", "B", "C"]
    assert [s.label for s in sections] == [label for label, *_ in SONG]
    assert all(0.0 <= s.confidence <= 1.0 for s in sections)


def test_a_song_without_intro_or_bridge_still_finds_verse_and_chorus():
    form = (("verse", "A", 8), ("chorus", "B", 8), ("verse", "A", 8), ("chorus", "B", 8), ("chorus", "B", 8))
    sections, _ = find_sections(song_features(form, seed=4))
    assert [s.label for s in sections][:4] == ["verse", "chorus", "verse", "chorus"]
    assert [s.first for s in sections][:4] == starts_of(form)[:4]


def test_a_confident_boundary_is_more_confident_than_a_blurred_one():
    features = song_features()
    blurred = song_features()
    # The first verse (bars 4..12) takes on half of the intro's sound and level: the intro-verse cut is weaker.
    blurred.timbre[4:12] = 0.5 * blurred.timbre[4:12] + 0.5 * blurred.timbre[0]
    blurred.energy[4:12] = 0.5 * blurred.energy[4:12] + 0.5 * blurred.energy[0]
    sharp, _ = find_sections(features)
    soft, _ = find_sections(blurred)
    assert soft[1].first == 4
    assert soft[1].confidence < sharp[1].confidence


def test_too_few_bars_identical_bars_and_broken_values_give_no_sections_and_a_note():
    few = song_features((("verse", "A", MIN_SONG_BARS - 1),))
    assert find_sections(few)[0] == [] and "too few" in find_sections(few)[1]
    flat = BarFeatures(harmony=np.ones((32, 128)), timbre=np.ones((32, 54)), energy=np.full(32, 0.5))
    assert find_sections(flat) == ([], "every bar sounds the same: no sections")
    broken = song_features()
    broken.harmony[10:20] = np.nan
    broken.timbre[30] = np.inf
    sections, note = find_sections(broken)
    assert note is None and [s.first for s in sections][:2] == [0, 4]
    assert sections[-1].stop == len(broken)


def test_a_three_hour_mix_gets_its_tracks_as_sections_of_bounded_length():
    """20,000 bars of tracks 32..96 bars long; the partition never holds a bars x bars matrix."""
    rng = np.random.default_rng(2)
    lengths = []
    while sum(lengths) < 20_000:
        lengths.append(int(rng.integers(32, 97)))
    lengths[-1] -= sum(lengths) - 20_000
    harmony = np.vstack([np.tile(rng.standard_normal(128), (n, 1)) for n in lengths])
    timbre = np.vstack([np.tile(rng.standard_normal(54), (n, 1)) for n in lengths])
    energy = np.concatenate([np.full(n, rng.uniform(0.3, 0.9)) for n in lengths])
    noise = np.random.default_rng(3)
    features = BarFeatures(harmony=harmony + 0.3 * noise.standard_normal(harmony.shape),
                           timbre=timbre + 0.3 * noise.standard_normal(timbre.shape), energy=energy)
    sections, note = find_sections(features)
    assert note is None
    assert max(s.stop - s.first for s in sections) <= MAX_BARS
    assert {s.label for s in sections} == {"section"}
    cuts = {s.first for s in sections}
    changes = set(np.cumsum(lengths)[:-1].tolist())
    assert len(changes & cuts) >= 0.95 * len(changes)


def test_letters_run_past_z():
    assert [letter_name(i) for i in (0, 1, 25, 26, 27, 51, 52)] == ["A", "B", "Z", "AA", "AB", "AZ", "BA"]


def test_pooling_takes_each_bars_frames_and_survives_a_bar_past_the_end():
    frames = np.arange(40, dtype=np.float32)[:, None] * np.ones((1, 3), dtype=np.float32)
    pooled = pool(frames, 10.0, np.array([0.0, 1.0, 3.5, 3.95]), np.array([1.0, 2.0, 4.5, 4.1]))
    assert pooled[:, 0].tolist() == pytest.approx([4.5, 14.5, 37.0, 39.0])
    assert block_means(np.arange(25, dtype=np.float32), 10).tolist() == pytest.approx([4.5, 14.5, 22.0])
    features = bar_features(np.array([0.0, 2.0]), np.array([2.0, 4.0]), harmony=frames, harmony_fps=10.0,
                            timbre=frames[:, :2], timbre_fps=10.0, energy=np.arange(8.0), energy_fps=2.0)
    assert features.energy.tolist() == pytest.approx([1.5, 5.5])


INFO = AudioInfo(path="/music/form.flac", size=1000, format="flac", duration=40.0, sample_rate=44100, channels=2)


def test_the_assembler_numbers_sections_by_bar_and_gives_each_bar_its_section():
    """A pickup beat (bar 0), then 18 bars of 4/4 at 120 BPM cut into three sections by saved results."""
    times = np.arange(73) * 0.5 + 0.5
    positions = np.array([4] + [1, 2, 3, 4] * 18)
    results = Results(info=INFO, content_hash="cd" * 32, duration=40.0,
                      loudness=Loudness(integrated_lufs=-14.0, range_lu=3.0, momentary=np.full(400, -14.0)),
                      energy=np.full(80, 0.5), beats=Beats(times=times, positions=positions, confidence=np.ones(73)),
                      transients=BeatTransients(times=np.full(73, np.nan), strengths=np.zeros(73)),
                      sections=[Section(0, 5, "intro", "A", 0.8), Section(5, 13, "verse", "B", 0.7),
                                Section(13, 19, "chorus", "C", 0.6)])
    doc = json.loads(json.dumps(assemble(results, analyzer={"version": "t"}, performance={})))
    sections = doc["timeline"]["sections"]
    assert [(s["bar"], s["bars"], s["label"], s["letter"]) for s in sections] == [
        (0, 5, "intro", "A"), (5, 8, "verse", "B"), (13, 6, "chorus", "C")]
    assert [s["start"] for s in sections] == [0.5, 9.0, 25.0]
    assert [s["end"] for s in sections] == [9.0, 25.0, 37.0]
    bars = doc["timeline"]["bars"]
    assert [b["section"] for b in bars] == [0] * 5 + [1] * 8 + [2] * 6
    for section in sections:
        first = next(b for b in bars if b["bar"] == section["bar"])
        assert first["time"] == section["start"]


def test_a_rendered_song_gets_its_form_within_a_bar(analyzer, media):
    signal, truth = form_song(120.0)
    audio = encode(write_wav(media / "form.wav", signal), media / "form.flac")
    doc = analyzer.analyze(audio)
    sections = doc["timeline"]["sections"]
    bar_s = 2.0
    assert len(sections) == len(truth)
    for found, expected in zip(sections, truth):
        assert found["start"] == pytest.approx(expected["start"], abs=bar_s)
        assert found["bars"] == pytest.approx(expected["bars"], abs=1)
    assert same_grouping([s["letter"] for s in sections], [label for label, *_ in FORM])
    assert [s["label"] for s in sections] == [label for label, *_ in FORM]
    bars = doc["timeline"]["bars"]
    assert all(bars[i]["section"] is not None for i in range(len(bars)))
    assert [b["section"] for b in bars] == sorted(b["section"] for b in bars)


@pytest.mark.slow
def test_a_song_analysed_in_chunks_has_the_sections_of_the_whole(analyzer, media):
    """The coarse spectrum is kept per chunk; its joined frames must give the same form as one piece."""
    from beatwatch.analysis.pipeline import Analyzer

    signal, _truth = form_song(120.0)
    audio = write_wav(media / "form_chunks.wav", signal)
    whole = analyzer.analyze(audio)["timeline"]["sections"]
    chunked = Analyzer(analyzer.networks, chunk_s=30).analyze(audio)["timeline"]["sections"]
    assert [(s["bar"], s["bars"], s["letter"], s["label"]) for s in chunked] == \
        [(s["bar"], s["bars"], s["letter"], s["label"]) for s in whole]
    assert len(whole) == len(FORM)


def test_silence_and_a_short_clip_have_no_sections_and_say_so(analyzer, media):
    silence = analyzer.analyze(write_wav(media / "silence_form.wav", np.zeros(SR * 10, dtype=np.float32)))
    signal, _truth = form_song(120.0)
    short = analyzer.analyze(write_wav(media / "short_form.wav", signal[: 2 * SR]))
    for doc in (silence, short):
        assert doc["timeline"]["sections"] == []
        assert any("sections" in note for note in doc["notes"])
