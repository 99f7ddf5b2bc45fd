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
# The file FluidSynth plays has one tempo and 1 ms ticks: its player re-bases its clock at every
# set_tempo event with a rounding bias that drifted a 320-event ramp by ~19 ms; absolute ticks do not.
RENDER_PPQ = 500
RENDER_TEMPO = 500_000

COMP, BASS, MELODY, DRUMS = 0, 1, 2, 9
BASS_PROGRAM = 33  # fingered electric bass
MELODY_PROGRAM = 73  # flute
KICK, SNARE, CLOSED_HAT = 36, 38, 42
VOICING_LOW = 55  # lowest note of a chord voicing: G3, so voicings sit around middle C
BASS_LOW = 40  # E2: bass roots land in E2..D#3
MELODY_RANGE = (67, 84)
SCALES: dict[Mode, tuple[int, ...]] = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}


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
    else:
        steps = spec.bars * spec.meter * RAMP_STEPS_PER_BEAT
        for step in range(steps):
            bpm = tempo.bpm + (tempo.end_bpm - tempo.bpm) * (step + 0.5) / steps
            events.append((PPQ + step * PPQ // RAMP_STEPS_PER_BEAT, _tempo_us(bpm)))
    return tuple(events)


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
        """One chord per slot (a bar, or half a bar), the progression cycled and transposed on modulation."""
        spec = self.spec
        _, chords = PROGRESSIONS[spec.progression]
        slot_ticks = spec.meter * PPQ // spec.changes_per_bar
        slots = []
        for index in range(spec.bars * spec.changes_per_bar):
            tonic = spec.tonic_at(index // spec.changes_per_bar)
            degree, quality = chords[index % len(chords)]
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
            for beat in range(slot.start, slot.end, PPQ):
                accent = 88 if (beat - PPQ) % (self.spec.meter * PPQ) == 0 else 72
                for pitch in voicing:
                    self.add(beat, PPQ * 3 // 4, COMP, pitch, accent)

    def bass(self, slots: list[_Slot]) -> None:
        for slot in slots:
            pitch = BASS_LOW + (slot.root - BASS_LOW) % 12
            for beat in range(slot.start, slot.end, PPQ):
                accent = 100 if (beat - PPQ) % (self.spec.meter * PPQ) == 0 else 84
                self.add(beat, PPQ * 7 // 8, BASS, pitch, accent)

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
                for offset in (0, PPQ // 2) if rhythm > 0.55 else (0,):
                    previous = self.step(scale, previous)
                    self.add(beat + offset, PPQ * 7 // 16 if rhythm > 0.55 else PPQ * 7 // 8, MELODY, previous, 72)

    def step(self, scale: list[int], previous: int) -> int:
        index = min(range(len(scale)), key=lambda i: abs(scale[i] - previous))
        index = max(0, min(len(scale) - 1, index + self.rng.choice((-2, -1, 1, 2))))
        return scale[index]

    def drums(self) -> None:
        """Kick on downbeats (and beat 3 in 4/4), snare on the backbeats, closed hi-hat on every eighth."""
        meter = self.spec.meter
        snare_beats = (1, 3) if meter == 4 else (1, 2)
        kick_beats = (0, 2) if meter == 4 else (0,)
        for beat_index in range(self.spec.bars * meter):
            tick = PPQ + beat_index * PPQ
            position = beat_index % meter
            self.add(tick, PPQ // 4, DRUMS, CLOSED_HAT, 62)
            self.add(tick + PPQ // 2, PPQ // 4, DRUMS, CLOSED_HAT, 46)
            if position in kick_beats:
                self.add(tick, PPQ // 4, DRUMS, KICK, 112 if position == 0 else 100)
            if position in snare_beats:
                self.add(tick, PPQ // 4, DRUMS, SNARE, 98 if meter == 4 else 80)


def compose(spec: SongSpec) -> Score:
    """Write every part of the song; deterministic for a given spec."""
    composer = _Composer(spec)
    slots = composer.chord_slots()
    composer.comp(slots)
    composer.bass(slots)
    if spec.melody:
        composer.melody(slots)
    if spec.style == "easy":
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
