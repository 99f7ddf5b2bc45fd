"""Turn a SongSpec into notes on a tick grid, its tempo map, and MIDI files.

Everything is placed in ticks first; seconds come only from `seconds`, the
one tick-to-time mapping that both the ground truth and the file FluidSynth
plays are built from, so the two cannot disagree.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

from .spec import INSTRUMENTS, PROGRESSIONS, Mode, SongSpec, key_name, pitch_name

PPQ = 480
# One lead-in beat of silence at 120 BPM puts the first beat at 0.5 s, so trackers see a beginning.
LEAD_IN_TEMPO = 500_000
RAMP_STEPS_PER_BEAT = 4
DRIFT = 0.05  # a drift's largest departure from its centre tempo
DRIFT_PERIOD_BARS = (6.0, 16.0)  # the two slow waves a drift is made of last this many bars
# The file FluidSynth plays has one tempo and 1 ms ticks: its player re-bases its clock at every
# set_tempo event with a rounding bias that drifted a 320-event ramp by ~19 ms; absolute ticks do not.
RENDER_PPQ = 500
RENDER_TEMPO = 500_000

COMP, BASS, MELODY, DRUMS = 0, 1, 2, 9
BASS_PROGRAM = 33  # fingered electric bass
MELODY_PROGRAM = 73  # flute
KICK, SNARE, CLOSED_HAT, PEDAL_HAT, OPEN_HAT, RIDE = 36, 38, 42, 44, 46, 51
VOICING_LOW = 55  # lowest note of a chord voicing: G3, so voicings sit around middle C
BASS_LOW = 40  # E2: bass roots land in E2..D#3
MELODY_RANGE = (67, 84)
SCALES: dict[Mode, tuple[int, ...]] = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
SWING_OFFBEAT = PPQ * 2 // 3  # a swung eighth lands on the third triplet of the beat
# Off-beat rhythms in beats from the chord's start, by the chord's length in beats: (onset, length).
CHARLESTON = {4: ((0, 0.6), (1 + 2 / 3, 0.3), (2, 0.6), (3 + 2 / 3, 0.3)), 3: ((0, 0.6), (1 + 2 / 3, 0.3)),
              2: ((0, 0.6), (1 + 2 / 3, 0.3))}
SYNCOPATED_COMP = {4: ((0, 0.75), (1.5, 0.4), (2.5, 0.4), (3.5, 0.35)), 3: ((0, 0.75), (1.5, 0.4), (2.5, 0.35)),
                   2: ((0, 0.75), (1.5, 0.4))}
SYNCOPATED_BASS = {4: ((0, 1.2, 0), (1.5, 0.4, 0), (2.5, 0.4, 12), (3, 0.8, 0)),
                   3: ((0, 1.2, 0), (1.5, 0.4, 0), (2.5, 0.4, 12)), 2: ((0, 1.2, 0), (1.5, 0.4, 0))}
BREAK_BARS = 4  # each drum break of the "breaks" style lasts this many bars (fewer in short songs)


@dataclass(frozen=True)
class Note:
    tick: int
    end: int
    channel: int
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Segment:
    """A labelled stretch of the song in ticks (a chord or a key)."""

    start: int
    end: int
    label: str


@dataclass(frozen=True)
class _Slot:
    """A chord slot while composing: where it is, its chord, and the key it sounds in."""

    start: int
    end: int
    root: int
    quality: str
    tonic: int

    @property
    def triad(self) -> tuple[int, int, int]:
        third = 4 if self.quality == "maj" else 3
        return self.root, (self.root + third) % 12, (self.root + 7) % 12


@dataclass(frozen=True)
class Score:
    """A composed song: notes, tempo map and the labels the ground truth reports."""

    spec: SongSpec
    tempo_map: tuple[tuple[int, int], ...]  # (tick, microseconds per quarter), sorted, first at tick 0
    notes: tuple[Note, ...]
    programs: dict[int, int]
    beat_ticks: tuple[int, ...]
    end_tick: int  # end of the last bar
    chords: tuple[Segment, ...]
    keys: tuple[Segment, ...]

    @property
    def bar_ticks(self) -> int:
        return self.spec.meter * PPQ


def seconds(tempo_map: tuple[tuple[int, int], ...], ticks: np.ndarray | list[int]) -> np.ndarray:
    """Tick positions to seconds under a tempo map (piecewise constant tempo)."""
    starts = np.array([tick for tick, _ in tempo_map], dtype=np.int64)
    tempos = np.array([tempo for _, tempo in tempo_map], dtype=np.float64)
    span_s = np.diff(starts) * tempos[:-1] / (1e6 * PPQ)
    start_s = np.concatenate(([0.0], np.cumsum(span_s)))
    ticks = np.asarray(ticks, dtype=np.int64)
    index = np.searchsorted(starts, ticks, side="right") - 1
    return start_s[index] + (ticks - starts[index]) * tempos[index] / (1e6 * PPQ)


def _tempo_us(bpm: float) -> int:
    return int(round(60e6 / bpm))


def tempo_map(spec: SongSpec) -> tuple[tuple[int, int], ...]:
    """Lead-in tempo at tick 0, then the song's plan from the first beat (tick PPQ)."""
    tempo = spec.tempo
    events = [(0, LEAD_IN_TEMPO)]
    if tempo.kind == "steady":
        events.append((PPQ, _tempo_us(tempo.bpm)))
    elif tempo.kind == "step":
        events += [(PPQ, _tempo_us(tempo.bpm)), (PPQ + tempo.step_bar * spec.meter * PPQ, _tempo_us(tempo.end_bpm))]
    elif tempo.kind == "drift":
        steps = spec.bars * spec.meter * RAMP_STEPS_PER_BEAT
        bars = np.arange(steps) / (spec.meter * RAMP_STEPS_PER_BEAT)
        wave = drift_wave(spec.seed, bars)
        for step in range(steps):
            events.append((PPQ + step * PPQ // RAMP_STEPS_PER_BEAT, _tempo_us(tempo.bpm * (1 + DRIFT * wave[step]))))
    else:
        steps = spec.bars * spec.meter * RAMP_STEPS_PER_BEAT
        for step in range(steps):
            bpm = tempo.bpm + (tempo.end_bpm - tempo.bpm) * (step + 0.5) / steps
            events.append((PPQ + step * PPQ // RAMP_STEPS_PER_BEAT, _tempo_us(bpm)))
    return tuple(events)


def drift_wave(seed: int, bars: np.ndarray) -> np.ndarray:
    """A slow wander in -1..1 over `bars` (positions in bars): two sines of random period and phase."""
    rng = random.Random(seed * 7919 + 17)
    wave = np.zeros(len(bars))
    for _ in range(2):
        period, phase = rng.uniform(*DRIFT_PERIOD_BARS), rng.uniform(0, 2 * np.pi)
        wave += np.sin(2 * np.pi * bars / period + phase)
    peak = float(np.abs(wave).max(initial=0.0))
    return wave / peak if peak > 0 else wave


def _voicings(pcs: tuple[int, int, int]) -> list[tuple[int, ...]]:
    """Root position and both inversions, each stacked upwards from a bass note at VOICING_LOW or above."""
    result = []
    for inversion in range(3):
        order = pcs[inversion:] + pcs[:inversion]
        notes = [VOICING_LOW + (order[0] - VOICING_LOW) % 12]
        for pc in order[1:]:
            notes.append(notes[-1] + (pc - notes[-1]) % 12)
        result.append(tuple(notes))
    return result


def _voice(pcs: tuple[int, int, int], previous: tuple[int, ...] | None) -> tuple[int, ...]:
    """The voicing nearest the previous one (smooth voice leading), or nearest middle C for the first chord."""
    candidates = _voicings(pcs)
    if previous is None:
        return min(candidates, key=lambda v: abs(sum(v) / len(v) - 62))
    return min(candidates, key=lambda v: sum(abs(a - b) for a, b in zip(v, previous)))


class _Composer:
    """Writes the parts of one song on the tick grid, drawing all choices from the spec's seed."""

    def __init__(self, spec: SongSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.notes: list[Note] = []

    def velocity(self, base: int) -> int:
        return max(1, min(127, base + self.rng.randint(-6, 6)))

    def add(self, tick: int, length: int, channel: int, pitch: int, base_velocity: int) -> None:
        self.notes.append(Note(tick, tick + length, channel, pitch, self.velocity(base_velocity)))

    def chord_slots(self) -> list[_Slot]:
        """One chord per slot (a bar, or half a bar), the progression cycled; a modulation starts it again
        from the top in the new key, as a chorus lifted a step up does."""
        spec = self.spec
        _, chords = PROGRESSIONS[spec.progression]
        slot_ticks = spec.meter * PPQ // spec.changes_per_bar
        restart = spec.modulation.bar * spec.changes_per_bar if spec.modulation else None
        slots = []
        for index in range(spec.bars * spec.changes_per_bar):
            tonic = spec.tonic_at(index // spec.changes_per_bar)
            step = index - restart if restart is not None and index >= restart else index
            degree, quality = chords[step % len(chords)]
            start = PPQ + index * slot_ticks
            slots.append(_Slot(start, start + slot_ticks, (tonic + degree) % 12, quality, tonic))
        return slots

    def comp(self, slots: list[_Slot]) -> None:
        instrument = INSTRUMENTS[self.spec.instrument]
        previous = None
        for slot in slots:
            voicing = _voice(slot.triad, previous)
            previous = voicing
            if instrument.sustained:
                for pitch in voicing:
                    self.add(slot.start, slot.end - slot.start - PPQ // 16, COMP, pitch, 72)
                continue
            pattern = {"swing": CHARLESTON, "syncopated": SYNCOPATED_COMP}.get(self.spec.style)
            if pattern is not None:
                for onset, length in pattern[(slot.end - slot.start) // PPQ]:
                    accent = 86 if onset == 0 else 76
                    for pitch in voicing:
                        self.add(slot.start + round(onset * PPQ), round(length * PPQ), COMP, pitch, accent)
                continue
            for beat in range(slot.start, slot.end, PPQ):
                accent = 88 if (beat - PPQ) % (self.spec.meter * PPQ) == 0 else 72
                for pitch in voicing:
                    self.add(beat, PPQ * 3 // 4, COMP, pitch, accent)

    def bass(self, slots: list[_Slot]) -> None:
        if self.spec.style == "swing":
            self.walking_bass(slots)
            return
        for slot in slots:
            pitch = BASS_LOW + (slot.root - BASS_LOW) % 12
            if self.spec.style == "syncopated":
                for onset, length, octave in SYNCOPATED_BASS[(slot.end - slot.start) // PPQ]:
                    self.add(slot.start + round(onset * PPQ), round(length * PPQ), BASS, pitch + octave,
                             100 if onset == 0 else 88)
                continue
            for beat in range(slot.start, slot.end, PPQ):
                accent = 100 if (beat - PPQ) % (self.spec.meter * PPQ) == 0 else 84
                self.add(beat, PPQ * 7 // 8, BASS, pitch, accent)

    def walking_bass(self, slots: list[_Slot]) -> None:
        """Quarter notes: the root on the chord's first beat, chord tones, then a half-step into the next root."""
        for index, slot in enumerate(slots):
            root = BASS_LOW + (slot.root - BASS_LOW) % 12
            following = slots[index + 1].root if index + 1 < len(slots) else slot.root
            target = BASS_LOW + (following - BASS_LOW) % 12
            beats = list(range(slot.start, slot.end, PPQ))
            tones = [root + (slot.triad[1] - slot.root) % 12, root + 7, root + 12]
            for position, beat in enumerate(beats):
                if position == 0:
                    pitch = root
                elif position == len(beats) - 1:
                    pitch = target + self.rng.choice((-1, 1))
                else:
                    pitch = tones[(position - 1) % len(tones)]
                self.add(beat, PPQ * 7 // 8, BASS, pitch, 96 if position == 0 else 84)

    def melody(self, slots: list[_Slot]) -> None:
        """Chord tones on each chord's first beat, scale steps in between, quarters, eighth pairs and rests."""
        low, high = MELODY_RANGE
        previous = (low + high) // 2
        for slot in slots:
            chord_tones = [p for p in range(low, high + 1) if p % 12 in slot.triad]
            scale = [p for p in range(low, high + 1) if (p - slot.tonic) % 12 in SCALES[self.spec.mode]]
            for beat in range(slot.start, slot.end, PPQ):
                if beat == slot.start:
                    previous = min(chord_tones, key=lambda p: (abs(p - previous), self.rng.random()))
                    self.add(beat, PPQ * 7 // 8, MELODY, previous, 80)
                    continue
                rhythm = self.rng.random()
                if rhythm > 0.85:
                    continue
                offbeat = SWING_OFFBEAT if self.spec.style == "swing" else PPQ // 2
                lengths = (offbeat * 7 // 8, (PPQ - offbeat) * 7 // 8) if rhythm > 0.55 else (PPQ * 7 // 8,)
                for offset, length in zip((0, offbeat), lengths):
                    previous = self.step(scale, previous)
                    self.add(beat + offset, length, MELODY, previous, 72)

    def step(self, scale: list[int], previous: int) -> int:
        index = min(range(len(scale)), key=lambda i: abs(scale[i] - previous))
        index = max(0, min(len(scale) - 1, index + self.rng.choice((-2, -1, 1, 2))))
        return scale[index]

    def drums(self) -> None:
        """The kit for the spec's style; "no_drums" has none."""
        style = self.spec.style
        if style == "swing":
            self.swing_drums()
        elif style == "syncopated":
            self.syncopated_drums()
        elif style in ("easy", "breaks"):
            self.rock_drums(break_bars(self.spec) if style == "breaks" else frozenset())

    def rock_drums(self, silent_bars: frozenset[int]) -> None:
        """Kick on downbeats (and beat 3 in 4/4), snare on the backbeats, closed hi-hat on every eighth."""
        meter = self.spec.meter
        snare_beats = (1, 3) if meter == 4 else (1, 2)
        kick_beats = (0, 2) if meter == 4 else (0,)
        for beat_index in range(self.spec.bars * meter):
            if beat_index // meter in silent_bars:
                continue
            tick = PPQ + beat_index * PPQ
            position = beat_index % meter
            self.add(tick, PPQ // 4, DRUMS, CLOSED_HAT, 62)
            self.add(tick + PPQ // 2, PPQ // 4, DRUMS, CLOSED_HAT, 46)
            if position in kick_beats:
                self.add(tick, PPQ // 4, DRUMS, KICK, 112 if position == 0 else 100)
            if position in snare_beats:
                self.add(tick, PPQ // 4, DRUMS, SNARE, 98 if meter == 4 else 80)

    def swing_drums(self) -> None:
        """Jazz time: ride on every beat plus the swung eighth after beats 2 and 4 (2 in 3/4), hi-hat foot on
        the backbeats, a feathered kick on the downbeat and the odd snare comp on a swung off-beat."""
        meter = self.spec.meter
        skip_beats = (1, 3) if meter == 4 else (1,)
        foot_beats = (1, 3) if meter == 4 else (1, 2)
        for beat_index in range(self.spec.bars * meter):
            tick = PPQ + beat_index * PPQ
            position = beat_index % meter
            self.add(tick, PPQ // 4, DRUMS, RIDE, 80 if position in foot_beats else 70)
            if position in skip_beats:
                self.add(tick + SWING_OFFBEAT, PPQ // 4, DRUMS, RIDE, 58)
            if position in foot_beats:
                self.add(tick, PPQ // 4, DRUMS, PEDAL_HAT, 64)
            if position == 0:
                self.add(tick, PPQ // 4, DRUMS, KICK, 70)
            if self.rng.random() < 0.15:
                self.add(tick + SWING_OFFBEAT, PPQ // 4, DRUMS, SNARE, 52)

    def syncopated_drums(self) -> None:
        """Funk: sixteenth hi-hats, kicks on the off-beats around the downbeat's, backbeat snares with ghost notes."""
        meter = self.spec.meter
        kicks = (0, 1.5, 2.5) if meter == 4 else (0, 1.5)
        snares = (1, 3) if meter == 4 else (1, 2)
        ghosts = (1.75, 3.25) if meter == 4 else (2.75,)
        for bar in range(self.spec.bars):
            start = PPQ + bar * meter * PPQ
            for sixteenth in range(meter * 4):
                accent = 64 if sixteenth % 2 == 0 else 42
                self.add(start + sixteenth * PPQ // 4, PPQ // 8, DRUMS, CLOSED_HAT, accent)
            for onset in kicks:
                self.add(start + round(onset * PPQ), PPQ // 4, DRUMS, KICK, 108 if onset == 0 else 96)
            for onset in snares:
                self.add(start + round(onset * PPQ), PPQ // 4, DRUMS, SNARE, 98)
            for onset in ghosts:
                self.add(start + round(onset * PPQ), PPQ // 8, DRUMS, SNARE, 34)
            self.add(start + round((meter - 0.5) * PPQ), PPQ // 4, DRUMS, OPEN_HAT, 60)


def break_bars(spec: SongSpec) -> frozenset[int]:
    """The 0-based bars where the "breaks" style's drums drop out: two breaks, about a third and two thirds in."""
    length = max(2, min(BREAK_BARS, spec.bars // 6))
    bars: set[int] = set()
    for where in (0.3, 0.65):
        first = round(spec.bars * where)
        bars.update(range(first, min(first + length, spec.bars - 1)))
    return frozenset(bars)


def compose(spec: SongSpec) -> Score:
    """Write every part of the song; deterministic for a given spec."""
    composer = _Composer(spec)
    slots = composer.chord_slots()
    composer.comp(slots)
    composer.bass(slots)
    if spec.melody:
        composer.melody(slots)
    if spec.style != "no_drums":
        composer.drums()
    programs = {COMP: INSTRUMENTS[spec.instrument].program, BASS: BASS_PROGRAM}
    if spec.melody:
        programs[MELODY] = MELODY_PROGRAM
    end_tick = PPQ + spec.bars * spec.meter * PPQ
    return Score(
        spec=spec,
        tempo_map=tempo_map(spec),
        notes=tuple(sorted(composer.notes, key=lambda n: (n.tick, n.channel, n.pitch))),
        programs=programs,
        beat_ticks=tuple(range(PPQ, end_tick, PPQ)),
        end_tick=end_tick,
        chords=tuple(_merge([Segment(s.start, s.end, f"{pitch_name(s.root, s.tonic, spec.mode)}:{s.quality}")
                             for s in slots])),
        keys=tuple(_keys(spec, end_tick)),
    )


def _merge(segments: list[Segment]) -> list[Segment]:
    """Join neighbours with the same label (a repeated chord is one chord)."""
    merged: list[Segment] = []
    for segment in segments:
        if merged and merged[-1].label == segment.label:
            merged[-1] = Segment(merged[-1].start, segment.end, segment.label)
        else:
            merged.append(segment)
    return merged


def _keys(spec: SongSpec, end_tick: int) -> list[Segment]:
    if spec.modulation is None:
        return [Segment(PPQ, end_tick, key_name(spec.tonic, spec.mode))]
    change = PPQ + spec.modulation.bar * spec.meter * PPQ
    return [Segment(PPQ, change, key_name(spec.tonic, spec.mode)),
            Segment(change, end_tick, key_name(spec.modulation.tonic, spec.mode))]


def _events(score: Score, tick_of: Callable[[int], int]) -> list[tuple[int, int, mido.Message | mido.MetaMessage]]:
    """(tick, order, message) for programs and notes; note-offs sort before note-ons at the same tick."""
    events: list[tuple[int, int, mido.Message | mido.MetaMessage]] = [
        (0, 1, mido.Message("program_change", channel=channel, program=program))
        for channel, program in score.programs.items()
    ]
    for note in score.notes:
        events.append((tick_of(note.tick), 3, mido.Message("note_on", channel=note.channel, note=note.pitch,
                                                           velocity=note.velocity)))
        events.append((tick_of(note.end), 2, mido.Message("note_off", channel=note.channel, note=note.pitch)))
    return events


def _save(events: list[tuple[int, int, mido.Message | mido.MetaMessage]], ppq: int, end_tick: int, path: Path) -> None:
    track = mido.MidiTrack()
    now = 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
    midi = mido.MidiFile(type=0, ticks_per_beat=ppq)
    midi.tracks.append(track)
    midi.save(str(path))


def write_midi(score: Score, path: Path) -> None:
    """The musical MIDI file: tempo map, time signature and notes on the beat grid (what a DAW should show)."""
    events = _events(score, lambda tick: tick)
    events.append((0, 0, mido.MetaMessage("time_signature", numerator=score.spec.meter, denominator=4)))
    events += [(tick, 0, mido.MetaMessage("set_tempo", tempo=tempo)) for tick, tempo in score.tempo_map]
    _save(events, PPQ, score.end_tick, path)


def write_render_midi(score: Score, path: Path, tail_s: float) -> None:
    """The file FluidSynth plays: every event at its exact time on a 1 ms grid under one constant tempo."""
    ms_per_tick = RENDER_TEMPO / RENDER_PPQ / 1000
    ticks = sorted({0, score.end_tick} | {n.tick for n in score.notes} | {n.end for n in score.notes})
    render_ticks = np.round(seconds(score.tempo_map, ticks) * 1000 / ms_per_tick).astype(int)
    grid = dict(zip(ticks, render_ticks.tolist()))
    events = _events(score, grid.__getitem__)
    events.append((0, 0, mido.MetaMessage("set_tempo", tempo=RENDER_TEMPO)))
    _save(events, RENDER_PPQ, grid[score.end_tick] + int(round(tail_s * 1000 / ms_per_tick)), path)
