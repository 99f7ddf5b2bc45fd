"""The arranged benchmark songs' truth is the score's: sections tile the song on bar lines, chords carry
their sevenths, the live feel stays within its limits, and the section measures tell right from wrong."""

from __future__ import annotations

import copy
from dataclasses import replace

import librosa
import mir_eval
import numpy as np
import pytest

from bench.arrange import DYNAMICS, HUMANIZE_MS, ArrangedSpec, compose_arranged
from bench.arranged import arranged_suite, ground_truth, render
from bench.compose import PPQ
from bench.form_scoring import score_arranged, section_scores
from bench.sections_peer import SAMPLE_RATE as PEER_SR
from bench.sections_peer import laplacian_sections

SUITE = arranged_suite()


@pytest.fixture(scope="module", params=[0, 3], ids=["4/4", "3/4"])
def composed(request):
    spec = SUITE[request.param]
    score = compose_arranged(spec)
    return spec, score, ground_truth(score, "song.wav", 200.0)


def test_the_suite_spreads_forms_meters_feel_tuning_mastering_and_formats():
    assert len({s.form for s in SUITE}) == 6
    assert {s.meter for s in SUITE} == {3, 4}
    assert {s.master for s in SUITE} == {"none", "reverb", "compress", "lofi"}
    assert {s.format for s in SUITE} == {"wav", "flac", "mp3", "ogg", "m4a"}
    assert any(s.swing for s in SUITE) and not all(s.swing for s in SUITE)
    assert any(10 <= abs(s.detune_cents) <= 40 for s in SUITE) and any(s.detune_cents == 0 for s in SUITE)
    assert any(s.form[0][0] != "intro" for s in SUITE)
    assert any(a == b == ("chorus", 8) for s in SUITE for a, b in zip(s.form, s.form[1:]))
    for spec in SUITE:
        seconds = spec.bars * spec.meter * 60 / spec.bpm
        assert 60 <= seconds <= 150, spec.name
    assert arranged_suite() == SUITE  # deterministic from the seed


def test_sections_tile_the_song_on_bar_lines(composed):
    spec, score, truth = composed
    sections = score.sections
    assert sections[0].start == PPQ and sections[-1].end == score.end_tick
    for a, b in zip(sections, sections[1:]):
        assert a.end == b.start and b.bar == a.bar + a.bars
    for section in sections:
        assert (section.start - PPQ) % score.bar_ticks == 0 and 4 <= section.bars <= 8
        assert section.end - section.start == section.bars * score.bar_ticks
    assert [(s.label, s.bars) for s in sections] == list(spec.form)
    letters = {(s.label, s.letter) for s in sections}
    assert len(letters) == len({s.label for s in sections}) == len({s.letter for s in sections})
    bar_times = {b["bar"]: b["time"] for b in truth["timeline"]["bars"]}
    for section in truth["timeline"]["sections"]:
        assert section["start"] == bar_times[section["bar"]]
    assert [b["section"] for b in truth["timeline"]["bars"]] == [s.label for s in sections for _ in range(s.bars)]


def test_repeats_play_the_same_chords(composed):
    _, score, _ = composed
    by_label: dict[str, set] = {}
    for section in score.sections:
        chords = tuple((c.start - section.start, c.label) for c in score.chords
                       if section.start <= c.start < section.end)
        by_label.setdefault(section.label, set()).add(chords[:4])
    assert all(len(variants) == 1 for variants in by_label.values())


def test_chords_carry_sevenths_suspensions_and_inversions_and_change_mid_bar():
    labels = set()
    mid_bar = 0
    for spec in SUITE[:8]:
        score = compose_arranged(spec)
        labels |= {c.label for c in score.chords}
        mid_bar += sum((c.start - PPQ) % score.bar_ticks != 0 for c in score.chords)
        assert all(a.end == b.start for a, b in zip(score.chords, score.chords[1:]))
    qualities = {label.split(":")[1].split("/")[0] for label in labels}
    assert {"maj7", "min7", "7", "hdim7", "sus2", "sus4", "maj", "min"} <= qualities
    assert any("/" in label for label in labels) and mid_bar > 0
    for label in labels:
        mir_eval.chord.encode(label)  # every label is valid Harte


def test_humanised_timing_stays_within_the_songs_limit(composed):
    spec, score, _ = composed
    offsets = np.abs(score.offsets_ms)
    assert HUMANIZE_MS[0] <= spec.humanize_ms <= HUMANIZE_MS[1]
    assert offsets.max() <= spec.humanize_ms
    assert offsets.mean() > spec.humanize_ms / 10  # not left on the grid
    with pytest.raises(ValueError, match="humanize_ms"):
        replace(spec, humanize_ms=30.0)


def test_choruses_are_louder_than_verses(composed):
    _, score, _ = composed
    def mean_velocity(label):
        spans = [(s.start, s.end) for s in score.sections if s.label == label]
        return np.mean([n.velocity for n in score.notes if any(a <= n.tick < b for a, b in spans)])
    assert DYNAMICS["chorus"] > DYNAMICS["verse"]
    assert mean_velocity("chorus") > mean_velocity("verse") + 10


def test_the_truth_scores_perfectly_against_itself(composed):
    _, _, truth = composed
    metrics = score_arranged(truth, truth)
    assert set(metrics) >= {"chord_sevenths", "section_hit_05", "section_hit_3", "section_pairwise", "section_label"}
    assert all(value == pytest.approx(1.0) for value in metrics.values()), metrics


def test_section_measures_tell_a_late_boundary_and_a_wrong_name(composed):
    _, _, truth = composed
    late = copy.deepcopy(truth["timeline"]["sections"])
    for a, b in zip(late, late[1:]):
        a["end"] = b["start"] = b["start"] + 1.0
    scores = section_scores(truth, late)
    assert scores["section_hit_05"] == 0.0 and scores["section_hit_3"] == 1.0
    renamed = copy.deepcopy(truth["timeline"]["sections"])
    for section in renamed:
        section["letter"] = {"A": "B", "B": "A"}.get(section["letter"], section["letter"])
        if section["label"] == "chorus":
            section["label"] = "section"
    scores = section_scores(truth, renamed)
    assert scores["section_pairwise"] == pytest.approx(1.0)  # letters are clusters: their names do not matter
    assert scores["section_label"] < 0.8
    assert score_arranged(truth, {"timeline": {"sections": []}})["section_pairwise"] == 0.0
    assert "section_pairwise" not in score_arranged(truth, {"timeline": {}})


def _strongest_pitch(audio: np.ndarray, sr: int) -> float:
    """The MIDI pitch (fractional) of the strongest partial between 60 Hz and 1 kHz."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), n=4 * len(audio)))
    freqs = np.fft.rfftfreq(4 * len(audio), 1 / sr)
    band = (freqs > 60) & (freqs < 1000)
    return float(librosa.hz_to_midi(freqs[band][np.argmax(spectrum[band])]))


def test_a_detuned_low_bitrate_mp3_renders_with_its_truth_in_tune(tmp_path):
    """The detune moves the audio's pitch and not the truth; the 64 kbit/s mp3 decodes to the truth's length."""
    base = ArrangedSpec(name="short", bpm=160.0, meter=4, tonic=0, mode="major",
                        form=(("intro", 4), ("chorus", 4)), progressions=(("intro", 0), ("chorus", 1)),
                        humanize_ms=5.0, lead=False, format="mp3", seed=1)
    pitches, labels = [], []
    for cents in (0.0, 40.0):
        song = render(replace(base, name=f"short{cents:.0f}", detune_cents=cents), tmp_path)
        truth = song.truth()
        audio, sr = librosa.load(str(song.audio), sr=22050, mono=True)
        assert abs(len(audio) / sr - truth["duration"]) < 0.1
        pitches.append(_strongest_pitch(audio[: 6 * sr], sr))
        labels.append([c["label"] for c in truth["timeline"]["chords"]])
    assert labels[0] == labels[1]
    assert pitches[1] - pitches[0] == pytest.approx(0.4, abs=0.05)


def test_the_laplacian_peer_finds_where_the_sound_changes():
    """Three 12 s parts (C major with soft clicks, another chord with loud ones, the first again): the peer's
    sections tile the signal, are lettered in order of appearance and have boundaries at both changes."""
    rng = np.random.default_rng(0)
    t = np.arange(12 * PEER_SR) / PEER_SR

    def part(freqs: list[float], clicks_gain: float) -> np.ndarray:
        clicks = np.zeros_like(t)
        clicks[(np.arange(0, 12, 0.5) * PEER_SR).astype(int)] = 1
        clicks = np.convolve(clicks, np.exp(-np.arange(400) / 40) * rng.standard_normal(400), "same")
        return 0.5 * sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs) + clicks_gain * clicks

    first = part([261.6, 329.6, 392.0], 0.3)
    signal = np.concatenate([first, part([220.0, 277.2, 329.6, 660.0], 0.8), first]).astype(np.float32)
    sections = laplacian_sections(signal)
    assert sections[0]["start"] == 0.0 and sections[-1]["end"] == pytest.approx(36.0)
    assert all(a["end"] == b["start"] for a, b in zip(sections, sections[1:]))
    letters = list(dict.fromkeys(s["letter"] for s in sections))
    assert letters == [chr(ord("A") + i) for i in range(len(letters))]
    starts = np.array([s["start"] for s in sections])
    assert all(np.min(np.abs(starts - change)) <= 1.0 for change in (12.0, 24.0))
