"""What a chord's context says about its name, on rendered audio: the key's scale and where a suspension sits.

A triad with one melody note on top reads, from its chroma alone, like a
richer chord: a fourth over a major triad like sus4, a flat fifth over a
minor triad like a diminished chord. Two musical facts tell them apart:
a band keeps a chord's added tones in the key (`name_chords(keys=...)`),
and a suspension comes before its resolution, never after it.
"""

from __future__ import annotations

import mido
import numpy as np

from beatwatch.analysis.audio.decode import SAMPLE_RATE, probe, stream
from beatwatch.analysis.harmony.chords import ChordSegment
from beatwatch.analysis.harmony.chroma import ChromaProcessor
from beatwatch.analysis.harmony.key import KeySegment
from beatwatch.analysis.harmony.qualities import name_chords
from bench.songs import synthesize
from tests.helpers import save_midi

BEAT_S = 0.5  # 120 BPM
BEATS = 8
PIANO, BASS, MELODY = 0, 1, 2


def _render(tmp_path, chord: tuple[int, ...], bass: int, melody: list[int | None],
            velocity: int = 110) -> tuple[np.ndarray, np.ndarray]:
    """BEATS beats of a held piano chord over a held bass note, a flute's note per beat (None: rest) at
    `velocity`; returns the chroma (bass, treble) at 10 fps."""
    ticks = 480
    events = []
    for channel, pitch in [(PIANO, p) for p in chord] + [(BASS, bass)]:
        events += [(0, 1, mido.Message("note_on", channel=channel, note=pitch, velocity=80)),
                   (BEATS * ticks - 30, 0, mido.Message("note_off", channel=channel, note=pitch, velocity=0))]
    for beat, pitch in enumerate(melody):
        if pitch is not None:
            events += [(beat * ticks, 1, mido.Message("note_on", channel=MELODY, note=pitch, velocity=velocity)),
                       ((beat + 1) * ticks - 30, 0, mido.Message("note_off", channel=MELODY, note=pitch, velocity=0))]
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=500_000))
    for channel, program in ((PIANO, 0), (BASS, 33), (MELODY, 73)):
        track.append(mido.Message("program_change", channel=channel, program=program))
    save_midi(tmp_path / "context.mid", track, events, ticks)
    synthesize(tmp_path / "context.mid", tmp_path / "context.wav")
    chunks = stream(probe(tmp_path / "context.wav"), chunk_s=3600.0, margin_s=0.0)
    chroma = ChromaProcessor(SAMPLE_RATE, 10)(np.concatenate([c.mono[c.core_start:c.core_end] for c in chunks]))
    return chroma.bass, chroma.treble


def _names(chroma: tuple[np.ndarray, np.ndarray], majmin: str, keys: list[KeySegment] | None = None) -> list[str]:
    grid = np.arange(0.0, BEATS * BEAT_S + BEAT_S / 2, BEAT_S)
    segment = ChordSegment(0.0, BEATS * BEAT_S, majmin, 0.9)
    return [s.label for s in name_chords([segment], grid, *chroma, 10, keys or [])]


def test_a_fourth_sung_over_a_held_triad_after_it_is_no_suspension(tmp_path):
    """C major held, the melody on its fifth, then on F (the fourth) for the last four beats."""
    leaning = _render(tmp_path, (60, 64, 67), 36, [79] * 4 + [77] * 4)
    names = _names(leaning, "C:maj")
    assert names[0] == "C:maj" and not any("sus" in label for label in names)


def test_the_same_fourth_before_its_resolution_is_a_suspension(tmp_path):
    """Csus4 (no third) resolving to C: the piano's third enters with the resolution."""
    first = _render(tmp_path, (60, 65, 67), 36, [77] * 4 + [None] * 4)
    names = _names(first, "C:maj")
    assert names[0] == "C:sus4"


def test_an_added_tone_outside_the_key_is_a_melody_note(tmp_path):
    """D minor with a soft G# (its flat fifth) on top: a diminished colour from the chroma alone, a D minor
    chord in C major, whose scale has no G#."""
    chroma = _render(tmp_path, (62, 65, 69), 38, [80] * 8, velocity=50)
    alone = _names(chroma, "D:min")
    in_c = _names(chroma, "D:min", [KeySegment(0.0, BEATS * BEAT_S, "C major", 0.9)])
    assert any(label.split(":")[1].split("/")[0] in ("dim", "hdim7") for label in alone)
    assert in_c == ["D:min"]


def test_a_sixth_sung_over_a_root_position_triad_keeps_the_root(tmp_path):
    """E minor in two octaves (E G B over a bass E) with a flute's C on every other beat: the C outweighs the
    chord's fifth on those beats, the mean of the bar reads like C/E, but a melody note is no chord tone."""
    sung = _render(tmp_path, (64, 67, 71, 76, 79, 83), 40, [72, None] * 4, velocity=60)
    assert all(label.startswith("E:min") for label in _names(sung, "E:min"))


def test_a_fourth_that_outweighs_both_thirds_names_a_suspension_over_a_seventh():
    """C F G Bb (C7sus4) as the upper register's chroma, its third only the faint trace the bass's 5th harmonic
    leaves: the fourth outweighs it SUSPENSION_DOMINANCE times over, so the rarer-chord price is waived and the
    chord is a suspension, not the C7 its flat seventh alone would make it. (Rendered, this voicing reads C:7:
    the bass's harmonic lands on the third at full strength, see tests/test_chord_qualities.py.)"""
    treble = np.full((40, 12), 0.05)
    treble[:, [0, 4, 5, 7, 10]] = [1.0, 0.04, 0.2, 0.6, 0.15]
    bass = np.zeros((40, 12))
    bass[:, 0] = 1.0
    segment = ChordSegment(0.0, BEATS * BEAT_S, "C:maj", 0.9)
    grid = np.arange(0.0, BEATS * BEAT_S + BEAT_S / 2, BEAT_S)
    assert [s.label for s in name_chords([segment], grid, bass, treble, 10)] == ["C:sus4"]
    treble[:, 4] = 0.2 * 0.5  # a real third at half the fourth: no suspension, the seventh decides
    assert [s.label for s in name_chords([segment], grid, bass, treble, 10)] == ["C:7"]
