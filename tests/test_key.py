"""Key and key changes from chord evidence, and bars from harmonic rhythm, on chord sequences with known answers.

The key decoder takes chords, a bar grid and the CNN's opinion as plain
arrays, so these tests feed it progressions a musician can check by ear:
the same four chords read as C major or A minor depending on where they
start and rest, a modulation lands on its bar, a stray chord changes nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
from madmom.features.key import KEY_LABELS

from beatwatch.analysis.harmony.beat_chords import beat_grid
from beatwatch.analysis.harmony.viterbi import switch_path
from beatwatch.analysis.harmony.chords import ChordSegment
from beatwatch.analysis.rhythm.harmonic_rhythm import regroup
from beatwatch.analysis.harmony.key import KeyRecognizer, decode
from beatwatch.analysis.rhythm.beats import Activations, Beats
from beatwatch.analysis.harmony.spelling import pitch_class
from beatwatch.analysis.harmony.tonality import (LAST_CHORD_WEIGHT, Chord, cadences, chord_class, first_chord_readings,
                                                 held_excess, relative, tonic_evidence)

BAR_S = 2.0
UNIFORM = np.full(24, 1 / 24)


def chords_of(labels: list[str], bar_s: float = BAR_S, lag_s: float = 0.0) -> list[ChordSegment]:
    """One chord per bar, reported `lag_s` late as the chord recogniser does."""
    return [ChordSegment(start=i * bar_s + lag_s, end=(i + 1) * bar_s + lag_s, label=label, confidence=0.9)
            for i, label in enumerate(labels)]


def key_spans(labels: list[str], cnn: np.ndarray = UNIFORM) -> list[tuple[str, int]]:
    """(key, first bar) per key segment, the CNN saying `cnn` everywhere."""
    edges = np.arange(len(labels) + 1) * BAR_S
    local = np.log(np.tile(cnn, (len(labels), 1)))
    spans = decode(edges, chords_of(labels), local, lambda first, stop: cnn, beat_s=BAR_S / 4)
    return [(KEY_LABELS[s.key], s.first) for s in spans]


def confident(key: str, p: float = 0.97) -> np.ndarray:
    probabilities = np.full(24, (1 - p) / 23)
    probabilities[KEY_LABELS.index(key)] = p
    return probabilities


A_MINOR_NO_DOMINANT = ["A:min", "F:maj", "C:maj", "G:maj"]  # i-VI-III-VII
C_MAJOR_SAME_CHORDS = ["C:maj", "G:maj", "A:min", "F:maj"]  # I-V-vi-IV


def test_chord_classes_follow_madmom_key_order():
    assert chord_class("A:maj") == KEY_LABELS.index("A major")
    assert chord_class("C:min") == KEY_LABELS.index("C minor")
    assert chord_class("N") is None and chord_class("X") is None
    assert KEY_LABELS[relative(KEY_LABELS.index("C major"))] == "A minor"
    assert KEY_LABELS[relative(KEY_LABELS.index("F# minor"))] == "A major"


def test_dominant_free_minor_resting_on_its_tonic_is_minor_even_against_a_sure_cnn():
    labels = A_MINOR_NO_DOMINANT * 4 + ["A:min"]
    assert key_spans(labels) == [("A minor", 0)]
    assert key_spans(labels, confident("C major")) == [("A minor", 0)]


def test_the_same_chords_starting_on_the_major_tonic_are_major():
    assert key_spans(C_MAJOR_SAME_CHORDS * 4 + ["C:maj"]) == [("C major", 0)]


def test_minor_chords_only_i_iv_v_are_the_minor_key():
    assert key_spans(["A:min", "D:min", "E:min"] * 5) == [("A minor", 0)]


def test_the_dominant_resolving_to_its_tonic_outweighs_the_first_and_last_chord():
    # starts and ends on F, but every A minor chord is reached from E major, its dominant
    labels = ["F:maj", "E:maj", "A:min", "D:min"] * 4 + ["F:maj"]
    assert key_spans(labels) == [("A minor", 0)]
    runs = [Chord(i, i + 1.0, chord_class(label)) for i, label in enumerate(labels)]
    assert cadences(runs)[KEY_LABELS.index("A minor")] == pytest.approx(4 / 5)
    assert cadences(runs)[KEY_LABELS.index("F major")] == 0.0


def test_modulation_up_a_tone_is_found_at_its_bar():
    labels = C_MAJOR_SAME_CHORDS * 2 + ["D:maj", "A:maj", "B:min", "G:maj"] * 2
    assert key_spans(labels) == [("C major", 0), ("D major", 8)]


def test_modulation_to_the_subdominant_is_found_at_its_bar():
    # C Am F G ends on G, which F major does not have, so the change can only come with the F after it
    labels = ["C:maj", "A:min", "F:maj", "G:maj"] * 3 + ["F:maj", "C:maj", "D:min", "A#:maj"] * 3
    assert key_spans(labels) == [("C major", 0), ("F major", 12)]


def test_minor_modulation_keeps_the_minor_reading():
    labels = A_MINOR_NO_DOMINANT * 3 + ["B:min", "G:maj", "D:maj", "A:maj"] * 3
    assert key_spans(labels) == [("A minor", 0), ("B minor", 12)]


def test_a_minor_song_whose_chorus_leans_on_its_relative_major_is_one_key():
    # verse i-VI-iv-V in A minor, chorus VI-VII-III-III: C major's chords, resting on C, for eight bars at a time
    verse, chorus = ["A:min", "F:maj", "D:min", "E:maj"] * 2, ["F:maj", "G:maj", "C:maj", "C:maj"] * 2
    labels = verse + chorus + verse + chorus + chorus + ["A:min"]
    assert key_spans(labels) == [("A minor", 0)]


def test_seventh_chords_count_as_the_triad_on_their_root():
    assert chord_class("C:min7") == chord_class("C:min7/b3") == KEY_LABELS.index("C minor")
    assert chord_class("Eb:maj7") == chord_class("D#:maj") == KEY_LABELS.index("Eb major")
    assert chord_class("G:7") == chord_class("G") == KEY_LABELS.index("G major")
    assert chord_class("B:hdim7") is None and chord_class("G:sus4") is None and chord_class("H:min") is None


def test_a_minor_song_full_of_minor_sevenths_is_minor_not_its_relative_major():
    # Cm7 sounds Eb G Bb over its C: the song is C minor even where the CNN is sure of Eb major
    labels = ["C:min7", "Ab:maj7", "C:min7", "Ab:maj7"] + ["C:min7", "Ab:maj7", "F:min7", "G:7"] * 3 + ["C:min7"]
    assert key_spans(labels) == [("C minor", 0)]
    assert key_spans(labels, confident("Eb major")) == [("C minor", 0)]


def notes_of(names: str):
    """notes(start, end) for the key decoder: these pitch classes sounding, equally loud, all the time."""
    played = np.zeros(12)
    played[[(pitch_class(n) - 9) % 12 for n in names.split()]] = 1.0
    return lambda start, end: played


def test_an_intro_on_a_minor_seventh_heard_as_its_upper_triad_opens_the_minor_key():
    # D minor: a pad plays Dm7 Bbmaj7 twice with no bass, and the chord recogniser names Dm7 "F"; the verse
    # is i-VI-iv-V, the chorus VI-VII-III-V (F major's chords)
    intro, verse, chorus = ["F:maj", "A#:maj"] * 2, ["D:min", "A#:maj", "G:min", "A:maj"] * 2, \
        ["A#:maj", "C:maj", "F:maj", "A:maj"] * 2
    labels = intro + (verse + chorus) * 2
    edges = np.arange(len(labels) + 1) * BAR_S
    local = np.log(np.tile(UNIFORM, (len(labels), 1)))

    def keys(notes) -> list[str]:
        spans = decode(edges, chords_of(labels), local, lambda first, stop: UNIFORM, beat_s=BAR_S / 4, notes=notes)
        return [KEY_LABELS[s.key] for s in spans]
    assert keys(notes_of("D F A C")) == ["D minor"]
    assert keys(notes_of("F A C")) == keys(None) == ["F major"]  # a plain F triad first: F major it is
    f_major = KEY_LABELS.index("F major")
    assert first_chord_readings(f_major, notes_of("D F A C")(0, 1)) == [(f_major, 0.5),
                                                                      (KEY_LABELS.index("D minor"), 0.5)]
    assert first_chord_readings(KEY_LABELS.index("D minor"), notes_of("D F A C")(0, 1)) == [
        (KEY_LABELS.index("D minor"), 1.0)]


def test_one_foreign_chord_is_not_a_key_change():
    labels = C_MAJOR_SAME_CHORDS * 4
    labels[9] = "D#:maj"
    assert key_spans(labels) == [("C major", 0)]


def test_without_chords_the_cnn_decides():
    assert key_spans(["N"] * 12, confident("E major")) == [("E major", 0)]


def test_tonic_evidence_skips_a_stray_first_frame_and_ignores_even_shares():
    runs = [Chord(0.0, 0.1, chord_class("G:maj"))] + [
        Chord(0.1 + i, 1.1 + i, chord_class(label)) for i, label in enumerate(A_MINOR_NO_DOMINANT * 2)]
    weights = np.zeros((8, 24))
    weights[np.arange(8), [chord_class(label) for label in A_MINOR_NO_DOMINANT * 2]] = 1.0
    evidence = tonic_evidence(runs, weights, beat_s=0.25)
    assert int(np.argmax(evidence)) == KEY_LABELS.index("A minor")
    assert evidence[KEY_LABELS.index("G major")] == LAST_CHORD_WEIGHT  # the last chord, not the stray first
    assert evidence[KEY_LABELS.index("C major")] == evidence[KEY_LABELS.index("F major")] == 0.0
    assert np.allclose(held_excess(np.array([4.0, 4.0, 4.0, 4.0])), 0.0)
    assert held_excess(np.array([2.0, 1.0, 1.0]))[0] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def recognizer() -> KeyRecognizer:
    return KeyRecognizer()


def test_key_timeline_changes_on_a_bar_line_and_names_the_longest_key(recognizer, analyzer):
    labels = C_MAJOR_SAME_CHORDS * 2 + ["D:maj", "A:maj", "B:min", "G:maj"] * 3
    duration = len(labels) * BAR_S + 1.0
    downbeats = np.arange(len(labels)) * BAR_S + 0.5
    spec = np.zeros((int(duration * 5), 105), dtype=np.float32)
    result = recognizer(spec, duration, analyzer.networks.key, chords=chords_of(labels, lag_s=0.6), downbeats=downbeats)
    assert [k.key for k in result.segments] == ["C major", "D major"]
    assert result.segments[1].start == pytest.approx(downbeats[8])
    assert result.segments[0].start == 0.0 and result.segments[-1].end == pytest.approx(duration)
    assert result.key == "D major" and 0.0 < result.confidence <= 1.0


def _beats(n: int, meter: int, period: float = 0.4) -> Beats:
    return Beats(times=0.5 + period * np.arange(n), positions=np.arange(n) % meter + 1, confidence=np.ones(n))


def _activations(beats: Beats, accent_every: int | None, duration: float) -> Activations:
    values = np.zeros((int(duration * 100), 2), dtype=np.float32)
    for i, time in enumerate(beats.times):
        column = 1 if accent_every and i % accent_every == 0 else 0
        values[int(round(time * 100)), column] = 0.6
        values[int(round(time * 100)), 1 - column] = 0.15
    return Activations(values=values, fps=100)


def test_chord_changes_every_three_beats_turn_a_guessed_four_into_three():
    tracked = _beats(48, 4)
    changes = chords_of(["G:maj", "C:maj", "D:maj", "G:maj"] * 4, bar_s=1.2)
    changes = [ChordSegment(c.start + 0.5 + 0.08, c.end + 0.5 + 0.08, c.label, c.confidence) for c in changes]
    regrouped = regroup(tracked, changes, _activations(tracked, None, 21.0))
    assert regrouped.meter == 3
    assert np.all(regrouped.times[regrouped.positions == 1][:5] == tracked.times[::3][:5])


def test_bars_the_network_heard_are_kept():
    tracked = _beats(48, 4)
    changes = chords_of(["G:maj", "C:maj", "D:maj", "G:maj"] * 4, bar_s=1.2)
    changes = [ChordSegment(c.start + 0.5, c.end + 0.5, c.label, c.confidence) for c in changes]
    assert regroup(tracked, changes, _activations(tracked, 4, 21.0)) is tracked


def test_the_bar_starts_where_the_harmony_enters_when_beats_1_and_3_sound_alike():
    tracked = _beats(48, 4)
    tracked = Beats(times=tracked.times, positions=(np.arange(48) + 2) % 4 + 1, confidence=tracked.confidence)
    changes = [ChordSegment(0.0, 0.55, "N", 0.9)] + [
        ChordSegment(0.55 + 0.8 * i, 0.55 + 0.8 * (i + 1), label, 0.9)
        for i, label in enumerate(["C:maj", "A:min", "F:maj", "G:maj"] * 6)]
    even = _activations(tracked, 2, 21.0)  # an accent on every other beat: beat 1 and beat 3 alike
    regrouped = regroup(tracked, changes, even)
    assert regrouped.positions[0] == 1 and regrouped.meter == 4
    assert regroup(tracked, changes, _activations(tracked, 4, 21.0)) is tracked  # the network heard beat 1


def test_a_short_excerpt_whose_kit_accents_beat_3_gets_its_bars_from_six_chord_changes():
    """A 24 s pop excerpt (the real-dev clip's shape): the network's downbeat output is three times higher on
    beat 3 than on beat 1, while the chord changes once a bar, on beat 1, six times. Six changes all on one
    beat of four happen by chance once in a thousand, so the bars follow them."""
    period = 0.6
    times = 1.4 + period * np.arange(38)
    truth_downbeat = (np.arange(38) - 1) % 4 == 0
    tracked = Beats(times=times, positions=(np.arange(38) + 1) % 4 + 1, confidence=np.ones(38))
    assert not np.any(tracked.positions[truth_downbeat] == 1)
    values = np.zeros((int(25.0 * 100), 2), dtype=np.float32)
    for time, position in zip(times, tracked.positions):
        values[int(round(time * 100))] = (0.6, {1: 0.75, 3: 0.22}.get(int(position), 0.01))
    bar_starts = times[truth_downbeat]
    ends = list(bar_starts[2:8]) + [times[-1] + period]
    changes = [ChordSegment(0.0, bar_starts[1] + 0.04, "N", 0.9)] + [
        ChordSegment(start + 0.04, end + 0.04, label, 0.9)
        for start, end, label in zip(bar_starts[1:8], ends, ["D:maj", "E:min", "A:maj"] + ["E:min", "A:maj"] * 2)]
    assert len(changes) - 2 == 6
    regrouped = regroup(tracked, changes, Activations(values=values, fps=100))
    downbeats = regrouped.times[regrouped.positions == 1]
    assert np.allclose(downbeats[downbeats > 6.0], bar_starts[bar_starts > 6.0])


def test_beat_grid_chords_keep_a_two_beat_chord_and_change_on_the_downbeat():
    evidence = np.zeros((12, 25))
    evidence[:8, 0] = 4.0  # A:maj for two bars ...
    evidence[4:6, 0], evidence[4:6, 5] = 0.0, 5.0  # ... but D:maj on beats 5 and 6
    evidence[7:, 3] = 4.5  # C:maj from beat 8 (a downbeat), but already a shade likelier on beat 7
    costs = np.where(np.arange(12) % 4 == 0, 3.0, 5.0)
    assert switch_path(evidence, costs).tolist() == [0] * 4 + [5] * 2 + [0] * 2 + [3] * 4
    assert beat_grid(np.array([0.5, 1.0, 1.5]), 3.0).tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
