"""Every chord quality, in inversions and octaves, rendered by FluidSynth and named from its chroma.

The majmin root and third are the chord CNN's job (tested with the
benchmark songs); here each chord's majmin form is handed in as the CNN
would give it, and the quality and bass must come out of the real rendered
audio: piano voicings in two registers over a fingered bass playing the
root or the inversion's note, one render for the whole set.
"""

from __future__ import annotations

import mido
import numpy as np
import pytest

from beatwatch.analysis.audio.decode import SAMPLE_RATE, probe, stream
from beatwatch.analysis.harmony.chords import ChordSegment
from beatwatch.analysis.harmony.chroma import ChromaProcessor
from beatwatch.analysis.harmony.qualities import name_chords
from beatwatch.analysis.harmony.spelling import SHARP_ROOTS
from beatwatch.analysis.harmony.tuning import deviation_histogram, spectral_peaks, tuning_cents
from beatwatch.analysis.harmony.vocabulary import BASS_DEGREES, QUALITIES, harte, simple
from bench.songs import synthesize
from tests.helpers import save_midi

CHORD_S = 2.0
BEAT_S = 0.5
PIANO, BASS = 0, 1
# (quality, root pitch class, bass interval above the root, lowest piano note's octave base)
CASES = [
    (quality, root, bass, base)
    for i, quality in enumerate(QUALITIES)
    for j, (bass, base) in enumerate([(0, 60), (QUALITIES[quality][1], 48), (QUALITIES[quality][2], 60),
                                      (0, 48)])
    for root in [(5 * i + 7 * j) % 12]
]
DETUNE_CENTS = 30.0


def _label(quality: str, root: int, bass: int) -> str:
    return harte(SHARP_ROOTS[root], quality, bass)


def _midi(path, cases, cents: float) -> None:
    """One chord per CHORD_S: the piano's close voicing from the root above `base`, the bass one note."""
    ticks = 480
    per_chord = int(CHORD_S * 2 * ticks)  # 120 BPM: two beats a second
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=500_000))
    bend = int(round(cents / 200 * 8192))  # the default bend range is ±2 semitones
    for channel, program in ((PIANO, 0), (BASS, 33)):
        track.append(mido.Message("program_change", channel=channel, program=program))
        track.append(mido.Message("pitchwheel", channel=channel, pitch=bend))
    events = []
    for n, (quality, root, bass, base) in enumerate(cases):
        start, end = n * per_chord, (n + 1) * per_chord - 30
        notes = [(PIANO, base + root + interval) for interval in QUALITIES[quality]]
        notes.append((BASS, 36 + (root + bass) % 12))
        for channel, pitch in notes:
            events += [(start, 1, mido.Message("note_on", channel=channel, note=pitch, velocity=90)),
                       (end, 0, mido.Message("note_off", channel=channel, note=pitch, velocity=0))]
    save_midi(path, track, events, ticks)


def _named(tmp_path, cents: float) -> list[list[ChordSegment]]:
    """Render the cases, and name each one's span from the chroma of the whole render, at the tuning `tuning.py`
    hears in it."""
    _midi(tmp_path / "chords.mid", CASES, cents)
    synthesize(tmp_path / "chords.mid", tmp_path / "chords.wav")
    chunks = stream(probe(tmp_path / "chords.wav"), chunk_s=3600.0, margin_s=0.0)
    mono = np.concatenate([c.mono[c.core_start:c.core_end] for c in chunks])
    tuning = tuning_cents(deviation_histogram(spectral_peaks(mono, SAMPLE_RATE)))
    assert tuning is not None and abs(tuning - cents) <= 5.0
    chroma = ChromaProcessor(SAMPLE_RATE, 10)(mono, tuning)
    grid = np.arange(0.0, len(CASES) * CHORD_S + BEAT_S / 2, BEAT_S)
    named = []
    for n, (quality, root, _bass, _base) in enumerate(CASES):
        majmin = ChordSegment(n * CHORD_S, (n + 1) * CHORD_S, simple(_label(quality, root, 0)), 0.9)
        named.append(name_chords([majmin], grid, chroma.bass, chroma.treble, 10))
    return named


@pytest.fixture(scope="module")
def in_tune(tmp_path_factory):
    return _named(tmp_path_factory.mktemp("chords"), 0.0)


@pytest.fixture(scope="module")
def detuned(tmp_path_factory):
    return _named(tmp_path_factory.mktemp("detuned"), DETUNE_CENTS)


def test_the_cases_cover_every_quality_in_root_position_and_two_inversions():
    assert {q for q, *_ in CASES} == set(QUALITIES)
    assert {(q, b) for q, _r, b, _o in CASES} == {(q, i) for q in QUALITIES for i in (0, *QUALITIES[q][1:3])}
    assert all(b in BASS_DEGREES for _q, _r, b, _o in CASES if b)


@pytest.mark.parametrize("case", range(len(CASES)), ids=[_label(q, r, b) + f"@{o}" for q, r, b, o in CASES])
def test_each_rendered_chord_keeps_its_root_and_third_and_names_a_chord_tone_as_bass(in_tune, case):
    quality, root, _bass, _base = CASES[case]
    for segment in in_tune[case]:
        named_root, _, rest = segment.label.partition(":")
        named_quality, _, degree = rest.partition("/")
        assert named_root == SHARP_ROOTS[root] and segment.simple == simple(_label(quality, root, 0))
        assert not degree or {v: k for k, v in BASS_DEGREES.items()}[degree] in QUALITIES[named_quality]


def test_rendered_single_chords_get_their_full_name_at_least_as_often_as_measured(in_tune):
    """A floor, not the goal: a lone piano chord over a bass note is harder than a band's (this set measured 15
    of 36 exact names and 16 of 36 exact qualities when written, 14 and 15 with the chroma at `tuning.py`'s
    estimate, where the arranged benchmark songs score 0.86 on mir_eval's sevenths): the bass's overtones (a
    fifth and a major third above it) land in the upper register and read as the chord's own fifth and third.
    Stronger compression of the chroma names 17 and 18 here but costs the arranged songs' suspensions."""
    exact = [[s.label for s in named] == [_label(q, r, b)] for named, (q, r, b, _o) in zip(in_tune, CASES)]
    quality = [[s.label.partition("/")[0] for s in named] == [_label(q, r, 0)]
               for named, (q, r, _b, _o) in zip(in_tune, CASES)]
    assert sum(exact) >= 14 and sum(quality) >= 15


def test_thirty_cents_of_detuning_changes_few_labels(in_tune, detuned):
    same = [[s.label for s in d] == [s.label for s in t] for d, t in zip(detuned, in_tune)]
    assert sum(same) >= 0.8 * len(same)
