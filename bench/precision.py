"""Steady songs at tempi between whole BPM, for the tempo precision rows of `bench.accuracy`.

A DJ lays a constant grid at the reported BPM and expects it on the beat
64 bars later; at 139 BPM that takes the BPM right to 0.02. The loop suite's
steady songs sit on tenths of a BPM; these sit on hundredths, at the kinds of
tempo DJs meet (trance, house, hip-hop), with drums and without. They live
here rather than in songs.py because its source is part of every song's cache
key: adding them there would re-render the whole suite.
"""

from __future__ import annotations

from .spec import PROGRESSIONS, SongSpec, Tempo

# (tempo, tonic, progression, style, instrument, format); 24 bars of 4/4.
PRECISION_SONGS: tuple[tuple, ...] = (
    (138.88, 9, "i-VI-III-VII", "easy", "pad", "mp3"),
    (127.35, 0, "I-V-vi-IV", "syncopated", "epiano", "flac"),
    (93.7, 5, "I-vi-IV-V", "no_drums", "piano", "wav"),
)
BARS = 24


def precision_suite() -> list[SongSpec]:
    """The steady songs at BPMs with two decimals, named p00.. after the loop suite's edge cases."""
    specs = []
    for i, (bpm, tonic, progression, style, instrument, audio_format) in enumerate(PRECISION_SONGS):
        specs.append(SongSpec(
            name=f"p{i:02d}-{bpm:.2f}bpm-44-steady-{instrument}-{style}", tempo=Tempo.steady(bpm), meter=4,
            tonic=tonic, mode=PROGRESSIONS[progression][0], progression=progression, instrument=instrument,
            bars=BARS, style=style, format=audio_format, seed=700 + i))
    return specs
