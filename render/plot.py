"""A picture of one sidecar timeline: sections, waveform, beats and bars, chords, key, tempo and loudness on one time
axis, as png or svg (the interactive html page is timeline_page.py, drawn in the browser).

It reads the sidecar document, not the analyses, so any stored result can be
drawn again without decoding; the audio is optional and only sharpens the
top panel. The same figure must stay readable for a 3-minute song and a
1-hour mix, so width grows with duration up to a cap and every kind of mark
(beat lines, bar lines, bar numbers, chord and key names) is thinned to what
the pixels can hold instead of being drawn on top of itself.

Figures are built on the Agg canvas directly, never through pyplot: no
display is needed, no backend is switched for the rest of the process, and
no global figure registry keeps a figure alive when drawing fails halfway,
which matters once a long-running daemon draws one per track.
"""

from __future__ import annotations

import colorsys
import io
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import FuncFormatter, MultipleLocator

from beatwatch.analysis.audio.decode import Audio
from beatwatch.analysis.harmony.vocabulary import simple

FORMATS = (".png", ".svg", ".html")
DPI = 100
HEIGHT_IN = 9.0
# Width: a pop song gets MIN_WIDTH_IN, longer files grow by WIDTH_IN_PER_MIN up to MAX_WIDTH_IN (4000 px).
MIN_WIDTH_IN = 16.0
WIDTH_IN_PER_MIN = 1.5
MAX_WIDTH_IN = 40.0
# Fixed margins in inches, so the plotting area is a known number of pixels whatever the width.
LEFT_IN, RIGHT_IN, TOP_IN, BOTTOM_IN = 1.0, 0.3, 0.85, 0.55
PANEL_HEIGHTS = {"sections": 0.45, "wave": 3.0, "chords": 0.9, "keys": 0.55, "tempo": 1.5, "loudness": 1.5}
# Below these spacings the lines merge into a grey wash that hides the waveform.
MIN_BEAT_PX = 4.0
MIN_BAR_PX = 4.0
LABEL_PT = 7.5
LABEL_GAP_PX = 6.0
LABEL_OFFSET_PT = 2.0
MIN_TIME_TICK_PX = 90.0
TIME_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
TOP_TAGS = 5
# One colour per letter, in order of first appearance; letters past the palette's end reuse it.
SECTION_COLOURS = ("#8fb8de", "#f4a259", "#9bc995", "#e07a8f", "#c3a6e0", "#f2d57e", "#7fc8c1", "#d9a88f",
                   "#b5b5b5", "#a4c46a")
# The waveform envelope reads this many samples at a time, so a 3-hour file needs no mono copy.
ENVELOPE_BLOCK = 1 << 22
PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
COLOURS = {"wave": "#4a6fa5", "wave_rms": "#23395d", "beat": "#c8c8c8", "bar": "#d1495b",
           "tempo": "#2e7d32", "loudness": "#6a4c93", "empty": "#909090"}


def figure_size(duration: float) -> tuple[float, float]:
    """Figure (width, height) in inches for a file of this many seconds."""
    minutes = max(duration, 0.0) / 60.0
    width = min(MAX_WIDTH_IN, max(MIN_WIDTH_IN, 11.0 + WIDTH_IN_PER_MIN * minutes))
    return width, HEIGHT_IN


def label_stride(n_items: int, width_px: float, min_px: float) -> int:
    """Smallest power-of-two k so that labelling every k-th of n evenly spread items leaves min_px per label.

    Powers of two keep labelled bars on phrase boundaries (1, 5, 9 ... or 1, 17, 33 ...).
    """
    if n_items <= 0 or min_px <= 0:
        return 1
    if width_px <= 0:
        return 1 << max(n_items - 1, 0).bit_length()
    stride = 1
    while stride < n_items and stride * width_px / n_items < min_px:
        stride *= 2
    return stride


# Harte qualities as a lead sheet writes them (hdim7 as m7b5: every font has those glyphs).
LEAD_SHEET = {"": "", "maj": "", "min": "m", "min7": "m7", "hdim7": "m7b5", "maj6": "6", "min6": "m6"}
# Harte bass degrees in semitones above the root, to name the bass note as a lead sheet does (C/E).
BASS_SEMITONES = {"2": 2, "b3": 3, "3": 4, "4": 5, "b5": 6, "5": 7, "#5": 8, "6": 9, "b7": 10, "7": 11}
FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def chord_name(label: str) -> str:
    """Lead-sheet spelling of a Harte label (A:min -> Am, C:maj -> C, G:7 -> G7, C:maj/3 -> C/E): shorter, so
    more of them fit. The bass note takes the root's accidentals."""
    root, _, quality = label.partition(":")
    quality, slash, bass = quality.partition("/")
    quality = LEAD_SHEET.get(quality, quality)
    root_pc = _pitch_class(root)
    if slash and root_pc is not None and bass in BASS_SEMITONES:
        bass = ((FLAT_NAMES if "b" in root[1:] else SHARP_NAMES)[(root_pc + BASS_SEMITONES[bass]) % 12])
    return f"{root}{quality}{slash}{bass}"


def fitting_names(runs: Sequence[tuple[float, float, str]], measure: Callable[[str], float],
                  px_per_s: float) -> list[str]:
    """Each run's full chord name where it fits inside the run's own width, its majmin name (Cmaj7/E -> C)
    where it does not: a dense strip stays readable, a spacious one says everything."""
    names = []
    for start, end, label in runs:
        full = chord_name(label)
        fits = measure(full) + 2 * LABEL_OFFSET_PT * DPI / 72 <= (end - start) * px_per_s
        names.append(full if fits else chord_name(simple(label)))
    return names


def _pitch_class(name: str) -> int | None:
    if not name or name[0].upper() not in PITCH_CLASSES:
        return None
    pc = PITCH_CLASSES[name[0].upper()]
    for accidental in name[1:]:
        pc += {"#": 1, "b": -1}.get(accidental, 0)
    return pc % 12


def harmony_colour(root: str, minor: bool) -> tuple[float, float, float]:
    """Hue follows the circle of fifths, so related chords and keys look related; minor is darker."""
    pc = _pitch_class(root)
    if pc is None:
        return (0.85, 0.85, 0.85)
    fifths = (pc * 7) % 12
    return colorsys.hsv_to_rgb(fifths / 12.0, 0.45 if minor else 0.3, 0.82 if minor else 0.97)


def _time_label(seconds: float, _pos: object = None) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _time_step(duration: float, axis_px: float) -> float:
    for step in TIME_STEPS_S:
        if step * axis_px / max(duration, 1e-9) >= MIN_TIME_TICK_PX:
            return float(step)
    return float(TIME_STEPS_S[-1])


def timeline_duration(doc: dict) -> float:
    """The file's length, or the end of the last timeline event when the file section lacks it."""
    timeline = doc.get("timeline", {})
    ends = [float(doc.get("file", {}).get("duration") or 0.0)]
    ends += [b["time"] + (b.get("duration") or 0.0) for b in timeline.get("bars", [])[-1:]]
    ends += [b["time"] for b in timeline.get("beats", [])[-1:]]
    ends += [k["end"] for k in timeline.get("keys", [])[-1:]]
    energy = timeline.get("energy") or {}
    ends.append(len(energy.get("values") or []) * float(energy.get("hop_s") or 0.0))
    return max(max(ends), 1.0)


def title_text(doc: dict) -> str:
    """File name, then the summary numbers a listener checks first; missing values are left out."""
    summary = doc.get("summary", {})
    name = Path(doc.get("file", {}).get("path") or "untitled").name
    parts = []
    if summary.get("bpm"):
        parts.append(f"{summary['bpm']:.1f} BPM")
    if summary.get("meter"):
        parts.append(f"{summary['meter']}/4")
    if summary.get("key"):
        parts.append(summary["key"])
    if summary.get("loudness_lufs") is not None:
        parts.append(f"{summary['loudness_lufs']:.1f} LUFS")
    tags = sorted(summary.get("tags") or [], key=lambda t: -(t.get("score") or 0.0))[:TOP_TAGS]
    if tags:
        parts.append(", ".join(t["label"] for t in tags))
    return name + ("\n" + "  ·  ".join(parts) if parts else "")


class _Row:
    """One row of labels laid out left to right; a label that would overlap the one before it, or
    run off the right end of the axis (limit_px), is refused.

    anchor "left" starts a label just right of its time, as a lead sheet writes a
    chord where it begins and a DAW ruler numbers a bar; "center" centres it on a span.
    """

    def __init__(self, measure: Callable[[str], float], px_per_s: float, limit_px: float) -> None:
        self._measure, self._px_per_s, self._limit_px = measure, px_per_s, limit_px
        self._right_px = -math.inf

    def take(self, text: str, x_s: float, anchor: str) -> bool:
        width, x_px = self._measure(text), x_s * self._px_per_s
        left = x_px + LABEL_OFFSET_PT * DPI / 72 if anchor == "left" else x_px - width / 2
        if left < self._right_px + LABEL_GAP_PX or left + width > self._limit_px:
            return False
        self._right_px = left + width
        return True


def _label(ax: Axes, text: str, x_s: float, y: float, *, anchor: str, **style) -> None:
    ax.annotate(text, (x_s, y), xytext=(LABEL_OFFSET_PT if anchor == "left" else 0, 0), textcoords="offset points",
                ha=anchor, va="center", fontsize=LABEL_PT, annotation_clip=False, clip_on=True, **style)


def _empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center",
            fontsize=9, color=COLOURS["empty"], style="italic")


def waveform_envelope(audio: Audio, columns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel-column min, max and RMS of the mono mix: the whole signal in as many points as can be seen."""
    samples = audio.samples
    columns = max(1, min(columns, len(samples)))
    per = len(samples) // columns
    low, high, rms = np.empty(columns), np.empty(columns), np.empty(columns)
    step = max(1, ENVELOPE_BLOCK // per)
    for first in range(0, columns, step):
        last = min(first + step, columns)
        mono = samples[first * per:last * per].mean(axis=1, dtype=np.float32).reshape(last - first, per)
        low[first:last], high[first:last] = mono.min(axis=1), mono.max(axis=1)
        rms[first:last] = np.sqrt(np.mean(np.square(mono, dtype=np.float64), axis=1))
    times = (np.arange(columns) + 0.5) * per / audio.sample_rate
    return times, low, high, rms


def _draw_signal(ax: Axes, doc: dict, audio: Audio | None, axis_px: float) -> None:
    if audio is not None and len(audio.samples):
        times, low, high, rms = waveform_envelope(audio, int(axis_px))
        ax.fill_between(times, low, high, color=COLOURS["wave"], linewidth=0, alpha=0.6)
        ax.fill_between(times, -rms, rms, color=COLOURS["wave_rms"], linewidth=0, alpha=0.8)
        peak = max(float(np.max(np.abs([low, high]))), 1e-3)
        ax.set_ylim(-1.15 * peak, 1.35 * peak)
        ax.set_yticks([])
        ax.set_ylabel("waveform")
        return
    energy = doc.get("timeline", {}).get("energy") or {}
    values = np.array([np.nan if v is None else v for v in energy.get("values") or []], dtype=float)
    hop = float(energy.get("hop_s") or 0.5)
    ax.set_ylim(0, 1.25)
    ax.set_yticks([0, 0.5, 1])
    ax.set_ylabel("energy")
    if len(values) == 0:
        _empty(ax, "no energy curve")
        return
    edges = np.arange(len(values) + 1) * hop
    ax.stairs(np.nan_to_num(values), edges, fill=True, color=COLOURS["wave"], alpha=0.6)


def labelled_bars(bars: Sequence[dict], axis_px: float, px_per_s: float,
                  measure: Callable[[str], float]) -> list[dict]:
    """The bars that get a number: every k-th (k from label_stride), minus any that would still collide
    where the tempo speeds up."""
    if not bars:
        return []
    widest = max(measure(str(b["bar"])) for b in bars)
    stride = label_stride(len(bars), axis_px, widest + LABEL_GAP_PX)
    row = _Row(measure, px_per_s, axis_px)
    return [b for b in bars if b["bar"] % stride == 1 % stride and row.take(str(b["bar"]), b["time"], "left")]


def _spacing_px(times: Sequence[float], px_per_s: float) -> float:
    """Typical distance between neighbouring marks; the median ignores intros and breaks without beats."""
    return float(np.median(np.diff(times))) * px_per_s if len(times) > 1 else math.inf


def _draw_beats_and_bars(ax: Axes, doc: dict, numbered: list[dict], px_per_s: float) -> None:
    timeline = doc.get("timeline", {})
    beats, bars = timeline.get("beats") or [], timeline.get("bars") or []
    if _spacing_px([b["time"] for b in beats], px_per_s) >= MIN_BEAT_PX:
        times = [b["time"] for b in beats if b.get("position") != 1]
        ax.vlines(times, 0, 1, transform=ax.get_xaxis_transform(), color=COLOURS["beat"], linewidth=0.5, zorder=0)
    if not bars:
        if not beats:
            _empty(ax, "no beats")
        return
    lines = bars if _spacing_px([b["time"] for b in bars], px_per_s) >= MIN_BAR_PX else numbered
    ax.vlines([b["time"] for b in lines], 0, 1, transform=ax.get_xaxis_transform(),
              color=COLOURS["bar"], linewidth=1.3, alpha=0.4, zorder=0)
    for bar in numbered:
        _label(ax, str(bar["bar"]), bar["time"], 0.93, anchor="left", xycoords=ax.get_xaxis_transform(),
               color=COLOURS["bar"], fontweight="bold")


def merged_bar_chords(bars: Sequence[dict]) -> list[tuple[float, float, str]]:
    """Consecutive bars with the same chord merged into (start, end, label); bars without a chord end a run."""
    return merged_runs((bar["time"], bar["time"] + (bar.get("duration") or 0.0), bar.get("chord")) for bar in bars)


def merged_runs(spans: Iterable[tuple[float, float, str | None]]) -> list[tuple[float, float, str]]:
    """(start, end, label) spans with touching repeats of one label merged; no-chord spans dropped."""
    runs: list[tuple[float, float, str]] = []
    for start, end, label in spans:
        if not label or label == "N":
            continue
        if runs and runs[-1][2] == label and abs(runs[-1][1] - start) < 1e-3:
            runs[-1] = (runs[-1][0], end, label)
        else:
            runs.append((start, end, label))
    return runs


def _stagger(labels: Sequence[tuple[float, str]], measure: Callable[[str], float], px_per_s: float,
             axis_px: float) -> list[tuple[float, str, int]]:
    """(time, text, row) for the labels that fit on two staggered rows; a label the upper row refuses tries the
    lower."""
    rows = [_Row(measure, px_per_s, axis_px), _Row(measure, px_per_s, axis_px)]
    placed = []
    for time_s, text in labels:
        row = next((i for i, r in enumerate(rows) if r.take(text, time_s, "left")), None)
        if row is not None:
            placed.append((time_s, text, row))
    return placed


def _strip(ax: Axes, name: str) -> None:
    """A panel of labelled spans: no y scale, its name on the left."""
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_ylabel(name, rotation=0, ha="right", va="center")


def _draw_chords(ax: Axes, doc: dict, numbered: list[dict], px_per_s: float, axis_px: float,
                 measure: Callable[[str], float]) -> None:
    runs = merged_bar_chords(doc.get("timeline", {}).get("bars") or [])
    _strip(ax, "chords")
    if not runs:
        _empty(ax, "no chords")
        return
    names = fitting_names(runs, measure, px_per_s)
    colour = {}
    for (_s, _e, label), name in zip(runs, names):
        colour[name] = colour[chord_name(simple(label))] = harmony_colour(label.split(":")[0],
                                                                          simple(label).endswith(":min"))
    ax.broken_barh([(s, e - s) for s, e, _l in runs], (0.05, 0.9),
                   facecolors=[colour[name] for name in names], edgecolor="white", linewidth=0.5)
    labels = _stagger([(start, name) for (start, _e, _l), name in zip(runs, names)], measure, px_per_s, axis_px)
    if 2 * len(labels) < len(runs):
        # Too dense to name most changes: name the chord under each numbered bar instead (its majmin name:
        # space is short), and draw that bar's line through the strip, so every name reads as "bar n plays this".
        named = [(b["time"], chord_name(simple(b["chord"]))) for b in numbered if b.get("chord") and b["chord"] != "N"]
        labels = _stagger(named, measure, px_per_s, axis_px)
        ax.vlines([b["time"] for b in numbered], 0, 1, color=COLOURS["bar"], linewidth=1.0, alpha=0.8)
    for time_s, name, row in labels:
        _label(ax, name, time_s, (0.7, 0.3)[row], anchor="left",
               bbox={"boxstyle": "round,pad=0.2", "facecolor": colour[name], "edgecolor": "#555555", "linewidth": 0.4})


def _draw_keys(ax: Axes, doc: dict, px_per_s: float, axis_px: float, measure: Callable[[str], float]) -> None:
    keys = doc.get("timeline", {}).get("keys") or []
    _strip(ax, "key")
    if not keys:
        _empty(ax, "no key")
        return
    colours = [harmony_colour(k["key"].split()[0], k["key"].endswith("minor")) for k in keys]
    ax.broken_barh([(k["start"], k["end"] - k["start"]) for k in keys], (0.05, 0.9), facecolors=colours,
                   edgecolor="white", linewidth=0.8)
    row = _Row(measure, px_per_s, axis_px)
    for key in keys:
        centre = (key["start"] + key["end"]) / 2
        if measure(key["key"]) <= (key["end"] - key["start"]) * px_per_s and row.take(key["key"], centre, "center"):
            _label(ax, key["key"], centre, 0.5, anchor="center", fontweight="bold")


def section_colours(sections: Sequence[dict]) -> dict[str, str]:
    """Each letter's band colour: sections that repeat each other look alike."""
    letters = list(dict.fromkeys(s["letter"] for s in sections))
    return {letter: SECTION_COLOURS[i % len(SECTION_COLOURS)] for i, letter in enumerate(letters)}


def _draw_sections(ax: Axes, doc: dict, px_per_s: float, measure: Callable[[str], float]) -> None:
    """The form as bands above the bars, each named by its label and letter where the band is wide enough."""
    sections = doc.get("timeline", {}).get("sections") or []
    _strip(ax, "sections")
    if not sections:
        _empty(ax, "no sections")
        return
    colour = section_colours(sections)
    ax.broken_barh([(s["start"], s["end"] - s["start"]) for s in sections], (0.05, 0.9),
                   facecolors=[colour[s["letter"]] for s in sections], edgecolor="white", linewidth=1.0)
    for section in sections:
        width_px = (section["end"] - section["start"]) * px_per_s
        centre = (section["start"] + section["end"]) / 2
        for text in (f"{section['label']} {section['letter']}", section["letter"]):
            if measure(text) <= width_px:
                _label(ax, text, centre, 0.5, anchor="center", fontweight="bold")
                break


def _draw_tempo(ax: Axes, doc: dict) -> None:
    tempo = [t for t in doc.get("timeline", {}).get("tempo") or [] if t.get("bpm")]
    ax.set_ylabel("BPM")
    if not tempo:
        ax.set_yticks([])
        _empty(ax, "no tempo")
        return
    times = [t["time"] for t in tempo] + [timeline_duration(doc)]
    bpm = [t["bpm"] for t in tempo]
    ax.stairs(bpm, times, color=COLOURS["tempo"], linewidth=1.3, baseline=None)
    low, high = min(bpm), max(bpm)
    margin = max(3.0, 0.15 * (high - low))
    ax.set_ylim(low - margin, high + margin)
    ax.grid(axis="y", color="#e0e0e0", linewidth=0.6)


def _draw_loudness(ax: Axes, doc: dict) -> None:
    bars = doc.get("timeline", {}).get("bars") or []
    ax.set_ylabel("LUFS")
    values = np.array([np.nan if b.get("loudness") is None else b["loudness"] for b in bars], dtype=float)
    if not np.isfinite(values).any():
        ax.set_yticks([])
        _empty(ax, "no loudness per bar")
        return
    edges = [b["time"] for b in bars] + [bars[-1]["time"] + (bars[-1].get("duration") or 0.0)]
    ax.stairs(values, edges, color=COLOURS["loudness"], linewidth=1.2, baseline=None)
    integrated = doc.get("summary", {}).get("loudness_lufs")
    if integrated is not None:
        ax.axhline(integrated, color=COLOURS["loudness"], linestyle="--", linewidth=0.8, alpha=0.6)
    low, high = np.nanmin(values), np.nanmax(values)
    margin = max(2.0, 0.1 * (high - low))
    ax.set_ylim(low - margin, high + margin)
    ax.grid(axis="y", color="#e0e0e0", linewidth=0.6)


def build_figure(doc: dict, *, audio: Audio | None = None) -> Figure:
    """The timeline figure, not yet saved; kept separate so tests can inspect what was drawn."""
    duration = timeline_duration(doc)
    width, height = figure_size(duration)
    fig = Figure(figsize=(width, height), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    names = list(PANEL_HEIGHTS)
    axes = fig.subplots(len(names), 1, sharex=True, height_ratios=list(PANEL_HEIGHTS.values()),
                        gridspec_kw={"hspace": 0.12})
    fig.subplots_adjust(left=LEFT_IN / width, right=1 - RIGHT_IN / width,
                        top=1 - TOP_IN / height, bottom=BOTTOM_IN / height)
    panel = dict(zip(names, axes))
    axis_px = (width - LEFT_IN - RIGHT_IN) * DPI
    px_per_s = axis_px / duration
    renderer = canvas.get_renderer()
    font = FontProperties(size=LABEL_PT, weight="bold")
    widths: dict[str, float] = {}

    def measure(text: str) -> float:
        if text not in widths:
            widths[text] = renderer.get_text_width_height_descent(text, font, ismath=False)[0] + 4.0
        return widths[text]

    numbered = labelled_bars(doc.get("timeline", {}).get("bars") or [], axis_px, px_per_s, measure)
    _draw_sections(panel["sections"], doc, px_per_s, measure)
    _draw_signal(panel["wave"], doc, audio, axis_px)
    _draw_beats_and_bars(panel["wave"], doc, numbered, px_per_s)
    _draw_chords(panel["chords"], doc, numbered, px_per_s, axis_px, measure)
    _draw_keys(panel["keys"], doc, px_per_s, axis_px, measure)
    _draw_tempo(panel["tempo"], doc)
    _draw_loudness(panel["loudness"], doc)
    last = axes[-1]
    last.set_xlim(0, duration)
    last.xaxis.set_major_locator(MultipleLocator(_time_step(duration, axis_px)))
    last.xaxis.set_major_formatter(FuncFormatter(_time_label))
    last.set_xlabel("time")
    for ax in axes:
        ax.tick_params(labelsize=8)
        ax.yaxis.label.set_size(9)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.suptitle(title_text(doc), x=LEFT_IN / width, ha="left", y=1 - 0.12 / height, va="top", fontsize=12)
    return fig


def render_plot(doc: dict, out: Path, *, audio: Audio | None = None, into: BinaryIO | None = None,
                audio_path: Path | None = None, embed_audio: bool = False) -> Path:
    """Draw the timeline to out; the suffix (.png, .svg, .html) picks the format. Raises ValueError for others.

    .html is the interactive page (render/timeline_page.py) whose player links audio_path (default: the sidecar's
    file) relative to out, or carries it inside when embed_audio. into: an open file to write instead of creating
    `out`, which then only names the format (the daemon creates its files itself, exclusively)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{out}: cannot plot to '{suffix or 'no suffix'}', use one of {', '.join(FORMATS)}")
    if embed_audio and suffix != ".html":
        raise ValueError(f"{out}: only an .html plot can carry the audio")
    if suffix == ".html":
        from .timeline_page import audio_source, timeline_page

        source = audio_path or doc.get("file", {}).get("path")
        src = audio_source(Path(source), out, embed=embed_audio) if source else None
        _write_text(timeline_page(doc, src, audio=audio), out, into)
        return out
    fig = build_figure(doc, audio=audio)
    if suffix == ".png":
        fig.savefig(into if into is not None else out, format="png", dpi=DPI, metadata={"Software": None})
        return out
    buffer = io.StringIO()
    # Text as <text>, not glyph outlines: smaller files and chord names a browser can search.
    # No RDF metadata block: it only names matplotlib and would be the one URL in the page.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "beatwatch"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    _write_text(buffer.getvalue(), out, into)
    return out


def _write_text(text: str, out: Path, into: BinaryIO | None) -> None:
    if into is not None:
        into.write(text.encode("utf-8"))
    else:
        out.write_text(text, encoding="utf-8")
