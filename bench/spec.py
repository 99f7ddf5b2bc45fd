"""What a benchmark song is made of: key, tempo plan, meter, progression, instruments, style.

A SongSpec is plain data so that it can be hashed into the cache file name
and stored inside the ground truth; everything audible follows from it (and
its seed) deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["major", "minor"]
Quality = Literal["maj", "min"]
# "drift" wanders like a live band: a few per cent either way, slowly, never on purpose.
TempoKind = Literal["steady", "ramp", "step", "drift"]
# "easy" has a plain rock kit; "no_drums" leaves the pulse to bass and comping; "swing" is a jazz ride
# pattern with swung eighths, a walking bass and Charleston comping; "syncopated" puts kicks, bass and
# comping on off-beats; "breaks" is the easy kit dropping out for a few bars, twice.
Style = Literal["easy", "no_drums", "swing", "syncopated", "breaks"]
AudioFormat = Literal["wav", "flac", "mp3", "ogg", "m4a"]

STYLES: tuple[Style, ...] = ("easy", "no_drums", "swing", "syncopated", "breaks")
TEMPO_KINDS: tuple[TempoKind, ...] = ("steady", "ramp", "step", "drift")
FORMATS: tuple[AudioFormat, ...] = ("wav", "flac", "mp3", "ogg", "m4a")

# Chords as (semitones above the tonic, quality); one entry per chord slot, cycled over the song.
# Triads only: the benchmark scores the majmin vocabulary.
PROGRESSIONS: dict[str, tuple[Mode, tuple[tuple[int, Quality], ...]]] = {
    "I-V-vi-IV": ("major", ((0, "maj"), (7, "maj"), (9, "min"), (5, "maj"))),
    "I-vi-IV-V": ("major", ((0, "maj"), (9, "min"), (5, "maj"), (7, "maj"))),
    "ii-V-I": ("major", ((2, "min"), (7, "maj"), (0, "maj"), (0, "maj"))),
    "I-IV-V-I": ("major", ((0, "maj"), (5, "maj"), (7, "maj"), (0, "maj"))),
    "blues": ("major", ((0, "maj"),) * 4 + ((5, "maj"),) * 2 + ((0, "maj"),) * 2
              + ((7, "maj"), (5, "maj"), (0, "maj"), (0, "maj"))),
    "i-VI-III-VII": ("minor", ((0, "min"), (8, "maj"), (3, "maj"), (10, "maj"))),
    "i-iv-v": ("minor", ((0, "min"), (5, "min"), (7, "min"))),
    "i-iv-V-i": ("minor", ((0, "min"), (5, "min"), (7, "maj"), (0, "min"))),
}


@dataclass(frozen=True)
class Instrument:
    """A General MIDI program and how it accompanies."""

    program: int
    sustained: bool  # holds each chord (organ, strings, pads) instead of striking it on every beat


INSTRUMENTS: dict[str, Instrument] = {
    "piano": Instrument(0, sustained=False),
    "epiano": Instrument(4, sustained=False),
    "organ": Instrument(16, sustained=True),
    "guitar": Instrument(25, sustained=False),
    "strings": Instrument(48, sustained=True),
    "pad": Instrument(89, sustained=True),
}

_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
# Tonics whose key signature has flats, so chord roots read the way a musician would spell them.
_FLAT_TONICS: dict[Mode, frozenset[int]] = {
    "major": frozenset({1, 3, 5, 8, 10}),
    "minor": frozenset({0, 2, 3, 5, 7, 10}),
}


def pitch_name(pc: int, tonic: int, mode: Mode) -> str:
    """Spell pitch class `pc` as it appears in the key of `tonic` `mode`."""
    names = _FLAT_NAMES if tonic % 12 in _FLAT_TONICS[mode] else _SHARP_NAMES
    return names[pc % 12]


def key_name(tonic: int, mode: Mode) -> str:
    """The key as mir_eval and the sidecar write it, e.g. "A minor"."""
    return f"{pitch_name(tonic, tonic, mode)} {mode}"


@dataclass(frozen=True)
class Tempo:
    """The tempo plan: steady, a linear ramp over the song, one jump at a bar line, or a slow drift around bpm."""

    kind: TempoKind
    bpm: float  # at the first beat (the centre of a drift)
    end_bpm: float  # at the last beat (ramp) or from step_bar on (step); equal to bpm when steady or drifting
    step_bar: int = 0  # 0-based bar where a step happens

    @classmethod
    def steady(cls, bpm: float) -> Tempo:
        return cls("steady", bpm, bpm)


@dataclass(frozen=True)
class Modulation:
    """A key change at the start of 0-based bar `bar` to `tonic`, keeping the mode."""

    bar: int
    tonic: int


@dataclass(frozen=True)
class SongSpec:
    """Everything that decides how one benchmark song sounds."""

    name: str
    tempo: Tempo
    meter: int  # beats per bar, each a quarter note: 3 or 4
    tonic: int  # pitch class, 0 = C
    mode: Mode
    progression: str  # a PROGRESSIONS key matching `mode`
    instrument: str  # an INSTRUMENTS key: the comping part
    bars: int
    style: Style = "easy"
    melody: bool = True
    changes_per_bar: int = 1  # 2 only in 4/4: a chord every two beats
    modulation: Modulation | None = None
    format: AudioFormat = "wav"
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.meter not in (3, 4):
            problems.append(f"meter {self.meter} is not 3 or 4")
        if self.progression not in PROGRESSIONS:
            problems.append(f"unknown progression {self.progression!r}")
        elif PROGRESSIONS[self.progression][0] != self.mode:
            problems.append(f"progression {self.progression!r} is not in {self.mode}")
        if self.instrument not in INSTRUMENTS:
            problems.append(f"unknown instrument {self.instrument!r}")
        if self.style not in STYLES:
            problems.append(f"unknown style {self.style!r}")
        if self.format not in FORMATS:
            problems.append(f"unknown format {self.format!r}")
        if self.changes_per_bar not in (1, 2) or (self.changes_per_bar == 2 and self.meter != 4):
            problems.append(f"changes_per_bar {self.changes_per_bar} needs 1, or 2 in 4/4")
        if self.bars < 1:
            problems.append(f"bars {self.bars} < 1")
        if self.tempo.kind not in TEMPO_KINDS:
            problems.append(f"unknown tempo kind {self.tempo.kind!r}")
        if self.tempo.kind == "step" and not 0 < self.tempo.step_bar < self.bars:
            problems.append(f"step_bar {self.tempo.step_bar} is not inside 1..{self.bars - 1}")
        if self.modulation is not None and not 0 < self.modulation.bar < self.bars:
            problems.append(f"modulation bar {self.modulation.bar} is not inside 1..{self.bars - 1}")
        if problems:
            raise ValueError(f"song spec {self.name!r}: " + "; ".join(problems))

    def tonic_at(self, bar: int) -> int:
        """The key's tonic during 0-based `bar`."""
        if self.modulation is not None and bar >= self.modulation.bar:
            return self.modulation.tonic
        return self.tonic
