"""Arranged songs: a form of sections, each with its own progression and arrangement, played with a live feel.

The loop suite (bench/compose.py) plays one triad progression with one
instrument set from the first bar to the last, and every measure saturated
on it. Records are not like that: an intro without drums, quiet verses,
loud choruses with a crash and a pad, a bridge in other colours, seventh
and suspended chords changing mid-bar over moving bass notes, a band that
is never exactly on the grid. This module writes such a song from an
ArrangedSpec, on the same tick grid and tempo mapping as the loop suite, so
its truth (beats, chords with sevenths, sections) is exact for the audio
except for the humanisation, which moves notes and never the truth.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from .compose import LEAD_IN_TEMPO, PPQ, SWING_OFFBEAT, Note, Segment
from .spec import Mode, key_name, pitch_name

SectionLabel = Literal["intro", "verse", "chorus", "bridge", "outro"]
Master = Literal["none", "reverb", "compress", "lofi"]
SECTION_LABELS: tuple[SectionLabel, ...] = ("intro", "verse", "chorus", "bridge", "outro")
MASTERS: tuple[Master, ...] = ("none", "reverb", "compress", "lofi")
HUMANIZE_MS = (5.0, 25.0)  # the largest timing error of a song's players lies in this range
DETUNE_CENTS = 40.0  # the largest global detune

# Harte qualities as pitch-class intervals above the root.
QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10), "7": (0, 4, 7, 10),
    "hdim7": (0, 3, 6, 10), "sus2": (0, 2, 7), "sus4": (0, 5, 7),
}
# Harte bass intervals of the inversions used.
BASS_INTERVALS = {"3": 4, "b3": 3, "5": 7}

# A progression is four bars; a bar is one chord or two (split at the half bar in 4/4, 2 + 1 beats in 3/4).
# A chord is "semitones above the tonic:Harte quality[/bass interval]".
Progression = tuple[tuple[str, ...], ...]
PROGRESSIONS: dict[Mode, dict[SectionLabel, tuple[Progression, ...]]] = {
    "major": {
        "intro": ((("0:maj7",), ("5:maj7",), ("0:maj7",), ("5:maj7",)),
                  (("0:sus2",), ("0:maj",), ("5:maj7",), ("7:sus4", "7:7"))),
        "verse": ((("0:maj7",), ("9:min7",), ("2:min7",), ("7:7",)),
                  (("0:maj",), ("7:maj/3",), ("9:min7",), ("5:maj7",)),
                  (("0:sus2", "0:maj"), ("4:min7",), ("5:maj7",), ("7:sus4", "7:7"))),
        "chorus": ((("5:maj",), ("7:maj",), ("4:min7", "9:min"), ("5:maj", "7:7")),
                   (("9:min",), ("5:maj",), ("0:maj",), ("7:maj",)),
                   (("0:maj",), ("7:7",), ("9:min",), ("5:maj",))),
        "bridge": ((("2:min7",), ("7:7",), ("4:min7",), ("9:min7",)),
                   (("5:maj7",), ("11:hdim7",), ("4:min7",), ("9:7",)),
                   (("10:maj",), ("5:maj",), ("0:maj/5",), ("7:sus4", "7:7"))),
        "outro": ((("5:maj7",), ("7:sus4",), ("0:maj7",), ("0:maj7",)),
                  (("2:min7",), ("7:7",), ("0:sus2",), ("0:maj",))),
    },
    "minor": {
        "intro": ((("0:min7",), ("8:maj7",), ("0:min7",), ("8:maj7",)),
                  (("0:min",), ("0:sus2",), ("5:min7",), ("7:7",))),
        "verse": ((("0:min7",), ("8:maj7",), ("5:min7",), ("7:7",)),
                  (("0:min",), ("2:hdim7", "7:7"), ("0:min",), ("8:maj",)),
                  (("0:min",), ("10:maj/3",), ("8:maj7",), ("7:sus4", "7:7"))),
        "chorus": ((("8:maj",), ("10:maj",), ("3:maj",), ("7:7",)),
                   (("5:min",), ("0:min/b3",), ("10:maj",), ("3:maj",)),
                   (("0:min",), ("8:maj",), ("3:maj",), ("10:maj",))),
        "bridge": ((("5:min7",), ("10:7",), ("3:maj7",), ("8:maj7",)),
                   (("2:hdim7",), ("7:7",), ("0:min",), ("7:sus4", "7:7"))),
        "outro": ((("5:min7",), ("7:sus4",), ("0:min",), ("0:min",)),
                  (("8:maj7",), ("7:7",), ("0:min7",), ("0:min7",))),
    },
}

# General MIDI programs each part draws from (one per song and label).
PALETTES: dict[str, tuple[int, ...]] = {
    "intro": (4, 0, 89, 11, 24),  # electric piano, piano, warm pad, vibraphone, nylon guitar
    "verse": (4, 27, 0, 24, 11),  # electric piano, clean guitar, piano, nylon guitar, vibraphone
    "chorus": (0, 29, 16, 18, 61),  # piano, overdriven guitar, drawbar organ, rock organ, brass section
    "bridge": (48, 19, 89, 46, 52),  # strings, church organ, warm pad, harp, choir
    "outro": (0, 4, 48, 89),
    "pad": (48, 49, 89, 91),  # strings, slow strings, warm pad, choir pad
    "lead": (73, 65, 56, 80, 71),  # flute, alto sax, trumpet, square lead, clarinet
    "bass": (33, 34, 32, 38),  # fingered, picked, acoustic, synth bass
}
COMP_CHANNELS: dict[SectionLabel, int] = {"intro": 0, "verse": 2, "chorus": 3, "bridge": 4, "outro": 5}
BASS, PAD, LEAD, DRUMS = 1, 6, 7, 9
KICK, STICK, SNARE, CLOSED_HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE = 36, 37, 38, 42, 44, 46, 49, 51
HIGH_TOM, MID_TOM, LOW_TOM, FLOOR_TOM = 50, 48, 45, 41
# Sixteenth-note fills over the last one or two beats of a section: snare, then down the toms.
FILLS = {1: (SNARE, HIGH_TOM, LOW_TOM, FLOOR_TOM),
         2: (SNARE, SNARE, HIGH_TOM, HIGH_TOM, MID_TOM, LOW_TOM, FLOOR_TOM, FLOOR_TOM)}
VOICING_LOW = 55
BASS_LOW = 40
LEAD_RANGE = (67, 84)
SCALES: dict[Mode, tuple[int, ...]] = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}

# Per label: base velocity (the dynamics), comping rhythms, bass patterns and kits to choose from.
DYNAMICS: dict[SectionLabel, int] = {"intro": 60, "verse": 70, "chorus": 100, "bridge": 76, "outro": 64}
COMP_RHYTHMS: dict[SectionLabel, tuple[str, ...]] = {
    "intro": ("whole", "arpeggio"), "verse": ("quarters", "push", "half", "arpeggio"),
    "chorus": ("eighths", "quarters", "push"), "bridge": ("whole", "arpeggio", "half"), "outro": ("whole", "half"),
}
BASS_PATTERNS: dict[SectionLabel, tuple[str, ...]] = {
    "intro": ("none", "whole"), "verse": ("quarters", "half"), "chorus": ("eighths", "quarters"),
    "bridge": ("whole", "half"), "outro": ("whole", "half"),
}
KITS: dict[SectionLabel, tuple[str, ...]] = {
    "intro": ("off", "hats"), "verse": ("light",), "chorus": ("full",), "bridge": ("off", "ride"),
    "outro": ("off", "hats", "light"),
}


@dataclass(frozen=True)
class ArrangedSpec:
    """Everything that decides how one arranged song sounds; the instruments and parts follow from `seed`."""

    name: str
    bpm: float
    meter: int  # 3 or 4 quarter notes to the bar
    tonic: int
    mode: Mode
    form: tuple[tuple[SectionLabel, int], ...]  # (label, bars) in order
    progressions: tuple[tuple[SectionLabel, int], ...]  # (label, index into PROGRESSIONS[mode][label])
    swing: bool = False
    humanize_ms: float = 10.0
    detune_cents: float = 0.0
    master: Master = "none"
    lead: bool = True  # a melody in the choruses
    format: str = "wav"
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.meter not in (3, 4):
            problems.append(f"meter {self.meter} is not 3 or 4")
        if not HUMANIZE_MS[0] <= self.humanize_ms <= HUMANIZE_MS[1]:
            problems.append(f"humanize_ms {self.humanize_ms} is outside {HUMANIZE_MS}")
        if abs(self.detune_cents) > DETUNE_CENTS:
            problems.append(f"detune {self.detune_cents} cents is beyond ±{DETUNE_CENTS}")
        if self.master not in MASTERS:
            problems.append(f"unknown master {self.master!r}")
        chosen = dict(self.progressions)
        for label, bars in self.form:
            if label not in SECTION_LABELS or not 4 <= bars <= 8:
                problems.append(f"section {label!r} of {bars} bars (labels {SECTION_LABELS}, 4-8 bars)")
            elif not 0 <= chosen.get(label, -1) < len(PROGRESSIONS[self.mode][label]):
                problems.append(f"no progression chosen for {label!r}")
        if problems:
            raise ValueError(f"arranged spec {self.name!r}: " + "; ".join(problems))

    @property
    def bars(self) -> int:
        return sum(bars for _, bars in self.form)


@dataclass(frozen=True)
class Chord:
    """A chord on the tick grid: its Harte label and the pitch classes played (bass first)."""

    start: int
    end: int
    label: str
    pcs: tuple[int, ...]
    bass: int


@dataclass(frozen=True)
class Section:
    start: int  # tick of its first downbeat
    end: int
    bar: int  # 1-based number of its first bar
    bars: int
    label: SectionLabel
    letter: str


@dataclass(frozen=True)
class ArrangedScore:
    """A composed arranged song: notes on the grid, and each note's timing error in ms (`offsets_ms`)."""

    spec: ArrangedSpec
    tempo_map: tuple[tuple[int, int], ...]
    notes: tuple[Note, ...]
    offsets_ms: tuple[float, ...]
    programs: dict[int, int]
    end_tick: int
    chords: tuple[Segment, ...]
    sections: tuple[Section, ...]
    arrangement: dict[str, dict] = field(default_factory=dict)

    @property
    def bar_ticks(self) -> int:
        return self.spec.meter * PPQ

    @property
    def beat_ticks(self) -> tuple[int, ...]:
        return tuple(range(PPQ, self.end_tick, PPQ))

    @property
    def key(self) -> str:
        return key_name(self.spec.tonic, self.spec.mode)


def parse_chord(token: str, tonic: int, mode: Mode) -> tuple[str, tuple[int, ...], int]:
    """A progression token as its Harte label, pitch classes and bass: "7:maj/3" in C is "G:maj/3", G B D over B."""
    degree, rest = token.split(":")
    quality, _, inversion = rest.partition("/")
    root = (tonic + int(degree)) % 12
    pcs = tuple((root + i) % 12 for i in QUALITIES[quality])
    bass = (root + BASS_INTERVALS[inversion]) % 12 if inversion else root
    label = f"{pitch_name(root, tonic, mode)}:{quality}" + (f"/{inversion}" if inversion else "")
    return label, pcs, bass


def _voicing(pcs: tuple[int, ...], previous: tuple[int, ...] | None) -> tuple[int, ...]:
    """The rotation of the chord stacked from VOICING_LOW up that moves least from the previous voicing."""
    candidates = []
    for rotation in range(len(pcs)):
        order = pcs[rotation:] + pcs[:rotation]
        notes = [VOICING_LOW + (order[0] - VOICING_LOW) % 12]
        for pc in order[1:]:
            notes.append(notes[-1] + (pc - notes[-1]) % 12)
        candidates.append(tuple(notes))
    if previous is None:
        return min(candidates, key=lambda v: abs(sum(v) / len(v) - 62))
    return min(candidates, key=lambda v: abs(sum(v) / len(v) - sum(previous) / len(previous)) + abs(v[0] - previous[0]))


@dataclass
class _Part:
    """The arrangement of one label, chosen once so that every repeat of a section sounds alike."""

    comp_rhythm: str
    bass: str
    kit: str
    pad: bool
    lead: bool
    crash: bool
    hat: int  # what keeps time in the kit: closed hi-hat or ride


class _Arranger:
    def __init__(self, spec: ArrangedSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.notes: list[Note] = []
        self.bar_ticks = spec.meter * PPQ

    def velocity(self, base: int) -> int:
        return max(1, min(127, base + self.rng.randint(-8, 8)))

    def add(self, tick: int, length: int, channel: int, pitch: int, base_velocity: int) -> None:
        self.notes.append(Note(tick, tick + max(length, PPQ // 16), channel, pitch, self.velocity(base_velocity)))

    def offbeat(self, beat_tick: int) -> int:
        return beat_tick + (SWING_OFFBEAT if self.spec.swing else PPQ // 2)

    def eighths(self, start: int, end: int) -> list[int]:
        ticks = []
        for beat in range(start, end, PPQ):
            ticks += [beat, self.offbeat(beat)]
        return [t for t in ticks if t < end]

    def parts(self) -> dict[SectionLabel, _Part]:
        labels = [label for label, _ in self.spec.form]
        parts = {}
        for label in dict.fromkeys(labels):
            parts[label] = _Part(
                comp_rhythm=self.rng.choice(COMP_RHYTHMS[label]), bass=self.rng.choice(BASS_PATTERNS[label]),
                kit=self.rng.choice(KITS[label]),
                pad=label == "chorus" or (label == "bridge" and self.rng.random() < 0.5),
                lead=self.spec.lead and label == "chorus", crash=label == "chorus" or self.rng.random() < 0.4,
                hat=RIDE if label == "chorus" and self.rng.random() < 0.4 else CLOSED_HAT)
        return parts

    def chords_of(self, label: SectionLabel, start: int, bars: int) -> list[Chord]:
        """The section's progression from its first bar, repeated (and cut) to fill `bars`."""
        index = dict(self.spec.progressions)[label]
        progression = PROGRESSIONS[self.spec.mode][label][index]
        split = 2 * PPQ
        chords = []
        for bar in range(bars):
            tokens = progression[bar % len(progression)]
            bar_start = start + bar * self.bar_ticks
            edges = [bar_start, bar_start + split, bar_start + self.bar_ticks] if len(tokens) == 2 else \
                [bar_start, bar_start + self.bar_ticks]
            for token, a, b in zip(tokens, edges, edges[1:]):
                label_text, pcs, bass = parse_chord(token, self.spec.tonic, self.spec.mode)
                chords.append(Chord(a, b, label_text, pcs, bass))
        return chords

    def comp(self, channel: int, rhythm: str, chords: list[Chord], base: int, previous: tuple[int, ...] | None
             ) -> tuple[int, ...] | None:
        for chord in chords:
            voicing = _voicing(chord.pcs, previous)
            previous = voicing
            length = chord.end - chord.start
            if rhythm == "whole":
                for pitch in voicing:
                    self.add(chord.start, length - PPQ // 16, channel, pitch, base - 4)
            elif rhythm == "arpeggio":
                order = list(voicing) + [voicing[0] + 12] + list(reversed(voicing[1:]))
                for i, tick in enumerate(self.eighths(chord.start, chord.end)):
                    self.add(tick, PPQ * 3 // 4, channel, order[i % len(order)], base + (6 if i == 0 else 0))
            else:
                onsets = {
                    "half": [chord.start + k for k in range(0, length, 2 * PPQ)],
                    "quarters": list(range(chord.start, chord.end, PPQ)),
                    "eighths": self.eighths(chord.start, chord.end),
                    "push": [chord.start] + [self.offbeat(b) for b in range(chord.start + PPQ, chord.end, PPQ)],
                }[rhythm]
                for i, tick in enumerate(onsets):
                    following = onsets[i + 1] if i + 1 < len(onsets) else chord.end
                    accent = 8 if (tick - PPQ) % self.bar_ticks == 0 else 0
                    for pitch in voicing:
                        self.add(tick, (following - tick) * 7 // 8, channel, pitch, base + accent - 6)
        return previous

    def pad(self, chords: list[Chord], base: int) -> None:
        previous = None
        for chord in chords:
            previous = _voicing(chord.pcs, previous)
            for pitch in previous:
                self.add(chord.start, chord.end - chord.start - PPQ // 16, PAD, pitch + 12, base - 30)

    def bass(self, pattern: str, chords: list[Chord], base: int) -> None:
        if pattern == "none":
            return
        for chord in chords:
            pitch = BASS_LOW + (chord.bass - BASS_LOW) % 12
            length = chord.end - chord.start
            if pattern == "whole":
                self.add(chord.start, length - PPQ // 8, BASS, pitch, base + 10)
                continue
            onsets = {"half": [chord.start + k for k in range(0, length, 2 * PPQ)],
                      "quarters": list(range(chord.start, chord.end, PPQ)),
                      "eighths": self.eighths(chord.start, chord.end)}[pattern]
            for i, tick in enumerate(onsets):
                following = onsets[i + 1] if i + 1 < len(onsets) else chord.end
                moved = pitch
                if pattern == "quarters" and i == 2 and chord.bass == chord.pcs[0]:
                    moved = pitch + 7  # the fifth on beat 3 of a root-position chord
                elif pattern == "eighths" and i % 4 == 3:
                    moved = pitch + 12
                self.add(tick, (following - tick) * 7 // 8, BASS, moved, base + (14 if i == 0 else 6))

    def lead(self, chords: list[Chord], base: int, rng: random.Random) -> None:
        """Chord tones on each chord's first beat, scale steps between; drawn from `rng` so repeats match."""
        low, high = LEAD_RANGE
        scale = [p for p in range(low, high + 1) if (p - self.spec.tonic) % 12 in SCALES[self.spec.mode]]
        previous = (low + high) // 2
        for chord in chords:
            tones = [p for p in range(low, high + 1) if p % 12 in chord.pcs]
            for beat in range(chord.start, chord.end, PPQ):
                if beat == chord.start:
                    previous = min(tones, key=lambda p: (abs(p - previous), rng.random()))
                    self.add(beat, PPQ * 7 // 8, LEAD, previous, base - 10)
                    continue
                rhythm = rng.random()
                if rhythm > 0.8:
                    continue
                ticks = [beat, self.offbeat(beat)] if rhythm > 0.5 else [beat]
                for i, tick in enumerate(ticks):
                    index = min(range(len(scale)), key=lambda k: abs(scale[k] - previous))
                    previous = scale[max(0, min(len(scale) - 1, index + rng.choice((-2, -1, 1, 2))))]
                    end = ticks[i + 1] if i + 1 < len(ticks) else beat + PPQ
                    self.add(tick, (end - tick) * 7 // 8, LEAD, previous, base - 16)

    def drums(self, kit: str, hat: int, start: int, bars: int, base: int, crash: bool, fill: bool) -> None:
        """One section's kit; a fill over the last beat (two in 4/4) leads into the next section."""
        if kit == "off":
            return
        meter = self.spec.meter
        end = start + bars * self.bar_ticks
        fill_start = end - (2 if meter == 4 and self.rng.random() < 0.5 else 1) * PPQ if fill else end
        backbeats = (1, 3) if meter == 4 else (1, 2)
        for beat_index in range(bars * meter):
            tick = start + beat_index * PPQ
            if tick >= fill_start:
                break
            position = beat_index % meter
            if kit == "hats":
                self.add(tick, PPQ // 4, DRUMS, PEDAL_HAT if position else CLOSED_HAT, base - 10)
                continue
            if kit == "ride":
                self.add(tick, PPQ // 4, DRUMS, RIDE, base - (4 if position else 0))
                if position == 0:
                    self.add(tick, PPQ // 4, DRUMS, KICK, base)
                continue
            self.add(tick, PPQ // 4, DRUMS, hat, base - 16 + (8 if position == 0 else 0))
            if kit == "full" or position % 2 == 1:
                opens = kit == "full" and position == meter - 1 and hat == CLOSED_HAT
                self.add(self.offbeat(tick), PPQ // 4, DRUMS, OPEN_HAT if opens else hat, base - (20 if opens else 30))
            if position == 0 or (meter == 4 and position == 2 and kit == "full"):
                self.add(tick, PPQ // 4, DRUMS, KICK, base + 10)
            if kit == "full" and meter == 4 and position == 2 and self.rng.random() < 0.4:
                self.add(self.offbeat(tick), PPQ // 4, DRUMS, KICK, base)
            if position in backbeats:
                self.add(tick, PPQ // 4, DRUMS, SNARE if kit == "full" else STICK, base + (4 if kit == "full" else -8))
        if crash:
            self.add(start, PPQ, DRUMS, CRASH, base + 10)
        strokes = FILLS[(end - fill_start) // PPQ] if fill else ()
        for i, drum in enumerate(strokes):
            self.add(fill_start + i * PPQ // 4, PPQ // 8, DRUMS, drum, base - 6 + 2 * i)

    def humanize(self) -> list[float]:
        """Each note's timing error in ms, within ±humanize_ms: a steady push or drag per part plus jitter.

        Kept beside the notes rather than folded into their ticks, so the error is exact in real time
        whatever the tempo (the lead-in beat runs at another tempo than the song).
        """
        limit = self.spec.humanize_ms
        lean = {channel: self.rng.uniform(-limit / 3, limit / 3) for channel in range(16)}
        return [round(max(-limit, min(limit, lean[note.channel] + self.rng.gauss(0.0, limit / 2))), 3)
                for note in self.notes]


def compose_arranged(spec: ArrangedSpec) -> ArrangedScore:
    """Write every section's parts, then the live feel; deterministic for a given spec."""
    arranger = _Arranger(spec)
    parts = arranger.parts()
    labels = list(dict.fromkeys(label for label, _ in spec.form))
    letters = {label: chr(ord("A") + i) for i, label in enumerate(labels)}
    programs = {COMP_CHANNELS[label]: arranger.rng.choice(PALETTES[label]) for label in labels}
    programs.update({BASS: arranger.rng.choice(PALETTES["bass"]), PAD: arranger.rng.choice(PALETTES["pad"]),
                     LEAD: arranger.rng.choice(PALETTES["lead"])})
    lead_seed = arranger.rng.randrange(1 << 30)
    sections, chords = [], []
    voicings: dict[SectionLabel, tuple[int, ...] | None] = {}
    tick, bar = PPQ, 1
    for index, (label, bars) in enumerate(spec.form):
        part = parts[label]
        base = DYNAMICS[label]
        section_chords = arranger.chords_of(label, tick, bars)
        voicings[label] = arranger.comp(COMP_CHANNELS[label], part.comp_rhythm, section_chords, base,
                                        voicings.get(label))
        arranger.bass(part.bass, section_chords, base)
        if part.pad:
            arranger.pad(section_chords, base)
        if part.lead:
            arranger.lead(section_chords, base, random.Random(lead_seed))
        following = parts[spec.form[index + 1][0]] if index + 1 < len(spec.form) else None
        arranger.drums(part.kit, part.hat, tick, bars, base, part.crash and index > 0,
                       fill=following is not None and following.kit != "off")
        end = tick + bars * arranger.bar_ticks
        sections.append(Section(tick, end, bar, bars, label, letters[label]))
        chords += section_chords
        tick, bar = end, bar + bars
    offsets = arranger.humanize()
    order = sorted(range(len(arranger.notes)), key=lambda i: (arranger.notes[i].tick, arranger.notes[i].channel,
                                                               arranger.notes[i].pitch))
    return ArrangedScore(
        spec=spec,
        tempo_map=((0, LEAD_IN_TEMPO), (PPQ, int(round(60e6 / spec.bpm)))),
        notes=tuple(arranger.notes[i] for i in order),
        offsets_ms=tuple(offsets[i] for i in order),
        programs=programs,
        end_tick=tick,
        chords=tuple(_merge(chords)),
        sections=tuple(sections),
        arrangement={label: vars(part) for label, part in parts.items()},
    )


def _merge(chords: list[Chord]) -> list[Segment]:
    """Neighbouring chords with the same label are one chord."""
    merged: list[Segment] = []
    for chord in chords:
        if merged and merged[-1].label == chord.label:
            merged[-1] = Segment(merged[-1].start, chord.end, chord.label)
        else:
            merged.append(Segment(chord.start, chord.end, chord.label))
    return merged
