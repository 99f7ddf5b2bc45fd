"""One spelling per key, chord roots spelled as their key writes them, in the sidecar of a real song."""

from __future__ import annotations

import mir_eval
import pytest

from beatwatch.analysis.harmony.spelling import KEY_NAMES, FLAT_ROOTS, pitch_class, spell_chord
from bench.songs import render_progression

README_TEXT = (__import__("pathlib").Path(__file__).parents[1] / "README.md").read_text()


def test_the_24_key_names_are_distinct_keys_with_the_fewer_accidentals_and_all_in_the_readme():
    assert len(KEY_NAMES) == 24
    assert len({(pitch_class(name.split()[0]), name.split()[1]) for name in KEY_NAMES}) == 24
    for name in ("Eb major", "Db major", "Ab major", "Bb minor", "C# minor", "F# major", "D# minor", "G# minor"):
        assert name in KEY_NAMES
    for name in ("D# major", "C# major", "A# minor", "Gb major", "Db minor"):
        assert name not in KEY_NAMES
    assert all(f"`{name}`" in README_TEXT for name in KEY_NAMES)


@pytest.mark.parametrize("label,key,expected", [
    ("D#:maj", "Eb major", "Eb:maj"), ("A#:maj", "Eb major", "Bb:maj"), ("G#:maj", "Ab major", "Ab:maj"),
    ("Eb:min", "E major", "D#:min"), ("A#:maj", "C major", "Bb:maj"), ("F#:maj", "F# major", "F#:maj"),
    ("C#:min", "A major", "C#:min"), ("A:min", "Eb major", "A:min"), ("N", "Eb major", "N"),
    ("D#:maj", None, "Eb:maj"),
])
def test_chord_roots_take_the_accidentals_of_their_key(label, key, expected):
    assert spell_chord(label, key) == expected
    if label != "N":  # the scores of the benchmark compare pitch classes: a respelled chord is the same chord
        assert mir_eval.chord.majmin([label], [expected])[0] == 1.0


@pytest.mark.slow
def test_a_song_in_e_flat_has_flat_chords_in_its_sidecar(analyzer, tmp_path):
    song = render_progression(tmp_path, "I-IV-V-I", tonic=3, bars=8, melody=True)
    document = analyzer.analyze(song.audio)
    assert document["summary"]["key"] == "Eb major"
    labels = {c["label"] for c in document["timeline"]["chords"]} | {b["chord"] for b in document["timeline"]["bars"]}
    roots = {label.split(":")[0] for label in labels if label and label != "N"}
    assert {"Eb", "Ab", "Bb"} <= roots
    assert not roots & {"D#", "G#", "A#"}
    assert set(roots) <= set(FLAT_ROOTS)


def test_the_benchmark_scores_enharmonic_spellings_as_the_same_key_and_chord():
    from bench.scoring import chord_majmin, key_mirex

    assert key_mirex("Eb minor", "D# minor") == key_mirex("D# minor", "D# minor") == 1.0
    truth = [{"start": 0.0, "end": 4.0, "label": "D#:maj"}, {"start": 4.0, "end": 8.0, "label": "A#:min"}]
    ours = [{"start": 0.0, "end": 4.0, "label": "Eb:maj"}, {"start": 4.0, "end": 8.0, "label": "Bb:min"}]
    assert chord_majmin(truth, ours) == 1.0
