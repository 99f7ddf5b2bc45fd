"""Assembles analysis results into the sidecar document (schema beatwatch.timeline/1).

It takes results, never files, so it can be tested from saved activations
without decoding anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from beatwatch.analysis.audio.decode import AudioInfo
from beatwatch.analysis.document import SCHEMA, printable
from beatwatch.analysis.harmony.chords import ChordSegment
from beatwatch.analysis.harmony.key import KeyResult
from .form.sections import Section
from beatwatch.analysis.harmony.notation import camelot, open_key
from beatwatch.analysis.harmony.spelling import spell_chord
from beatwatch.analysis.harmony.vocabulary import simple
from beatwatch.analysis.harmony.tuning import tuning_hz
from .loudness import ENERGY_HOP_S, Loudness, span_loudness
from beatwatch.analysis.rhythm.beats import Beats
from beatwatch.analysis.rhythm.tempo import Tempo
from beatwatch.analysis.rhythm.transients import BeatTransients

# summary.tags keeps this many of each model's best tags; the document's `tags` list keeps every score.
TOP_K = 5


@dataclass
class Results:
    """Everything the analyses produced for one file; None where an analysis did not run."""

    info: AudioInfo
    content_hash: str
    duration: float
    loudness: Loudness
    energy: np.ndarray
    beats: Beats = field(default_factory=Beats.empty)
    transients: BeatTransients = field(default_factory=BeatTransients.empty)
    tempo: Tempo = field(default_factory=Tempo.unknown)
    chords: list[ChordSegment] = field(default_factory=list)
    key: KeyResult | None = None
    tuning_cents: float | None = None  # from A=440
    danceability: float | None = None
    tags: list[dict] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def top_k(tags: list[dict], k: int = TOP_K) -> list[dict]:
    """The k best tags of each model, best first: for `summary.tags`, while the tags table keeps them all.

    Per model, because a two-class zoo head would otherwise crowd out or vanish among 50 tags.
    """
    kept: list[dict] = []
    for model in sorted({tag["model"] for tag in tags}):
        kept += sorted((tag for tag in tags if tag["model"] == model), key=lambda tag: -tag["score"])[:k]
    return sorted(kept, key=lambda tag: (-tag["score"], tag["model"]))


def _t(value: float) -> float:
    return round(float(value), 3)


def _v(value: float | None, digits: int = 4) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


@dataclass(frozen=True)
class Bar:
    number: int
    start: float
    end: float
    first_beat: int
    beat_count: int


def bars_from_beats(beats: Beats, duration: float) -> list[Bar]:
    """A bar starts at each position-1 beat; beats before the first downbeat form pickup bar 0."""
    n = len(beats.times)
    if n == 0:
        return []
    starts = [0] + [i for i in range(1, n) if beats.positions[i] == 1]
    number = 1 if beats.positions[0] == 1 else 0
    typical = float(np.median(np.diff(beats.times))) if n > 1 else 0.5
    bars = []
    for j, first in enumerate(starts):
        last = starts[j + 1] if j + 1 < len(starts) else n
        start = float(beats.times[first])
        if j + 1 < len(starts):
            end = float(beats.times[starts[j + 1]])
        else:
            meter = beats.meter or (last - first)
            end = min(start + meter * typical, duration)
        bars.append(Bar(number=number + j, start=start, end=max(end, start), first_beat=first, beat_count=last - first))
    return bars


def bar_chord(chords: list[ChordSegment], start: float, end: float) -> tuple[str | None, float | None]:
    """The label covering most of [start, end), and its coverage-weighted confidence."""
    if not chords or end <= start:
        return None, None
    cover: dict[str, float] = {}
    weighted: dict[str, float] = {}
    for seg in chords:
        overlap = min(seg.end, end) - max(seg.start, start)
        if overlap > 0:
            cover[seg.label] = cover.get(seg.label, 0.0) + overlap
            weighted[seg.label] = weighted.get(seg.label, 0.0) + overlap * seg.confidence
    if not cover:
        return None, None
    label = max(cover, key=cover.__getitem__)
    return label, weighted[label] / (end - start)


def assemble(results: Results, *, analyzer: dict, performance: dict) -> dict:
    """The sidecar document for one file."""
    info, beats = results.info, results.beats
    bars = bars_from_beats(beats, results.duration)
    bar_of_beat = np.zeros(len(beats.times), dtype=int)
    for bar in bars:
        bar_of_beat[bar.first_beat:bar.first_beat + bar.beat_count] = bar.number
    beat_rows = [
        {
            "time": _t(beats.times[i]),
            "bar": int(bar_of_beat[i]),
            "position": int(beats.positions[i]),
            "confidence": _v(beats.confidence[i]),
            "transient_time": None if np.isnan(results.transients.times[i]) else _t(results.transients.times[i]),
            "transient_strength": _v(results.transients.strengths[i]),
        }
        for i in range(len(beats.times))
    ]
    sections = _sections(results.sections, bars)
    section_of_bar = {}
    for index, section in enumerate(results.sections):
        for bar in bars[section.first:section.stop]:
            section_of_bar[bar.number] = index
    bar_rows = []
    key = results.key
    key_at = _key_lookup(key.segments if key else [])
    for bar in bars:
        chord, chord_conf = bar_chord(results.chords, bar.start, bar.end)
        chord_simple = None
        if chord is not None:
            chord = spell_chord(chord, key_at((bar.start + bar.end) / 2))
            chord_simple = simple(chord)
        bar_rows.append({
            "bar": bar.number, "time": _t(bar.start), "duration": _t(bar.end - bar.start),
            "beats": bar.beat_count, "chord": chord, "chord_simple": chord_simple, "chord_confidence": _v(chord_conf),
            "loudness": _v(span_loudness(results.loudness, bar.start, bar.end), 2),
            "section": section_of_bar.get(bar.number),
        })
    energy_values = [_v(v, 3) for v in results.energy]
    summary = {
        "bpm": _v(results.tempo.bpm, 2),
        "bpm_confidence": _v(results.tempo.confidence),
        "meter": beats.meter,
        "key": key.key if key else None,
        "key_confidence": _v(key.confidence) if key else None,
        "key_camelot": camelot(key.key) if key else None,
        "key_open": open_key(key.key) if key else None,
        "tuning_cents": _v(results.tuning_cents, 1),
        "tuning_hz": _v(tuning_hz(results.tuning_cents) if results.tuning_cents is not None else None, 2),
        "loudness_lufs": _v(results.loudness.integrated_lufs, 2),
        "loudness_range_lu": _v(results.loudness.range_lu, 2),
        "danceability": _v(results.danceability),
        "energy": _v(float(np.mean(results.energy)) if len(results.energy) else None),
        "tags": top_k(results.tags),
    }
    return {
        "schema": SCHEMA,
        "file": {
            "path": printable(info.path), "content_hash": results.content_hash, "size": info.size,
            "format": info.format, "duration": _t(results.duration),
            "sample_rate": info.sample_rate, "channels": info.channels,
            **({"metadata": info.metadata} if info.metadata else {}),
        },
        "analyzer": analyzer,
        "performance": performance,
        "summary": summary,
        "notes": results.notes,
        "tags": results.tags,
        "timeline": {
            "beats": beat_rows,
            "bars": bar_rows,
            "chords": [
                {"start": _t(c.start), "end": _t(c.end), "label": spell_chord(c.label, key_at((c.start + c.end) / 2)),
                 "simple": spell_chord(c.simple, key_at((c.start + c.end) / 2)), "confidence": _v(c.confidence)}
                for c in results.chords
            ],
            "tempo": [{"time": _t(t), "bpm": _v(b, 2)}
                      for t, b in zip(results.tempo.curve_times, results.tempo.curve_bpm)],
            "keys": [
                {"start": _t(k.start), "end": _t(k.end), "key": k.key, "confidence": _v(k.confidence)}
                for k in (key.segments if key else [])
            ],
            "energy": {"hop_s": ENERGY_HOP_S, "values": energy_values},
            "sections": sections,
        },
    }


def _sections(sections: list[Section], bars: list[Bar]) -> list[dict]:
    """Sections as the document lists them: times and bar numbers from the bar grid they were cut on."""
    return [
        {"start": _t(bars[s.first].start), "end": _t(bars[s.stop - 1].end), "bar": bars[s.first].number,
         "bars": s.stop - s.first, "label": s.label, "letter": s.letter, "confidence": _v(s.confidence)}
        for s in sections
    ]


def _key_lookup(segments: list) -> Callable[[float], str | None]:
    """The key in force at a time: the segment holding it, else the nearest one (a chord before the first bar)."""
    def key_at(time: float) -> str | None:
        if not segments:
            return None
        return min(segments, key=lambda s: 0.0 if s.start <= time < s.end else min(abs(time - s.start),
                                                                                    abs(time - s.end))).key
    return key_at
