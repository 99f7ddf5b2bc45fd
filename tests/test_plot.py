"""The timeline plot, drawn from real analyses and from a hand-built 1-hour mix, checked in its pixels and text."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from beatwatch.analysis.audio.decode import Audio, AudioInfo, decode, probe
from beatwatch.render.plot import (DPI, ENVELOPE_BLOCK, LEFT_IN, SECTION_COLOURS, build_figure, chord_name,
                                   figure_size, fitting_names, label_stride, render_plot, waveform_envelope)
from tests.helpers import SR, click_track, write_wav

MIX_BPM = 120.0
MIX_BARS = 1800
PROGRESSION = ["A:min", "F:maj", "C:maj", "G:maj", "E:min", "D:min7", "N", "Bb:maj"]


@pytest.fixture(scope="module")
def click_file(media: Path) -> Path:
    signal, _beats = click_track(120.0, seconds=20.0)
    return write_wav(media / "plot_clicks.wav", signal)


@pytest.fixture(scope="module")
def click_doc(analyzer, click_file: Path) -> dict:
    return analyzer.analyze(click_file)


def synthetic_doc(n_bars: int, chord_of_bar: list[str], *, path: str) -> dict:
    """A hand-built sidecar at MIX_BPM in 4/4 with a chord per bar and a key change every 10 minutes."""
    beat_s = 60.0 / MIX_BPM
    duration = n_bars * 4 * beat_s
    beats = [{"time": round(i * beat_s, 3), "bar": i // 4 + 1, "position": i % 4 + 1, "confidence": 0.9,
              "transient_time": None, "transient_strength": 0.0} for i in range(n_bars * 4)]
    bars = [{"bar": b + 1, "time": round(b * 4 * beat_s, 3), "duration": 4 * beat_s, "beats": 4,
             "chord": chord_of_bar[b], "chord_confidence": 0.8,
             "loudness": -9.0 - 3.0 * np.sin(b / 40.0)} for b in range(n_bars)]
    names = ["A minor", "C major", "E minor", "G major", "D minor", "F# major"]
    keys = [{"start": start, "end": min(start + 600.0, duration), "key": names[k % len(names)], "confidence": 0.6}
            for k, start in enumerate(np.arange(0.0, duration, 600.0))]
    return {
        "schema": "beatwatch.timeline/1",
        "file": {"path": path, "content_hash": "cd" * 32, "size": 1, "format": "flac",
                 "duration": duration, "sample_rate": 44100, "channels": 2},
        "summary": {"bpm": MIX_BPM, "bpm_confidence": 0.9, "meter": 4, "key": "A minor", "key_confidence": 0.6,
                    "loudness_lufs": -9.5, "loudness_range_lu": 5.0, "danceability": 0.8, "energy": 0.7,
                    "tags": [{"label": "electronic", "score": 0.8, "model": "msd-musicnn"},
                             {"label": "dance", "score": 0.6, "model": "msd-musicnn"}]},
        "timeline": {
            "beats": beats, "bars": bars, "chords": [],
            "tempo": [{"time": t, "bpm": MIX_BPM + 4.0 * np.sin(t / 600.0)} for t in np.arange(0.0, duration, 10.0)],
            "keys": keys,
            "energy": {"hop_s": 0.5, "values": list(0.5 + 0.4 * np.sin(np.arange(int(duration * 2)) / 300.0))},
        },
    }


FORM = (("intro", "A", 8), ("verse", "B", 16), ("chorus", "C", 16), ("verse", "B", 16), ("chorus", "C", 16),
        ("bridge", "D", 8), ("outro", "E", 10))


def song_doc() -> dict:
    """Three minutes of pop: 90 bars, the chord changing every bar, in the sections of FORM."""
    doc = synthetic_doc(90, [PROGRESSION[b % 4] for b in range(90)], path="/music/song.flac")
    bars, sections, first = doc["timeline"]["bars"], [], 0
    for index, (label, letter, count) in enumerate(FORM):
        run = bars[first:first + count]
        sections.append({"start": run[0]["time"], "end": run[-1]["time"] + run[-1]["duration"], "bar": run[0]["bar"],
                         "bars": count, "label": label, "letter": letter, "confidence": 0.8})
        for bar in run:
            bar["section"] = index
        first += count
    doc["timeline"]["sections"] = sections
    return doc


def mix_doc() -> dict:
    """A 1-hour DJ mix: 7200 beats, 1800 bars, a random chord every 2 bars."""
    changes = np.random.default_rng(7).integers(0, len(PROGRESSION), MIX_BARS // 2)
    return synthetic_doc(MIX_BARS, [PROGRESSION[changes[b // 2]] for b in range(MIX_BARS)], path="/music/mix.flac")


def expected_pixels(doc: dict) -> tuple[int, int]:
    width, height = figure_size(doc["file"]["duration"])
    return round(height * DPI), round(width * DPI)


def assert_drawn(png: Path, doc: dict) -> None:
    """The PNG has the size figure_size asks for and is a picture, not a blank canvas."""
    pixels = mpimg.imread(png)
    assert pixels.shape[:2] == expected_pixels(doc)
    rgb = (pixels[..., :3] * 255).astype(np.uint32).reshape(-1, 3)
    assert np.mean(np.any(rgb < 235, axis=1)) > 0.08
    assert len(np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2])) > 100


def bar_numbers(fig) -> list:
    return [t for t in fig.axes[1].texts if t.get_text().isdigit()]


def overlapping(texts: list) -> list[tuple[str, str]]:
    """Pairs of labels whose drawn boxes intersect, on the figure's own renderer."""
    renderer = texts[0].figure.canvas.get_renderer() if texts else None
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    return [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:] if box_a.overlaps(box_b)]


def test_png_of_an_analysed_click_track_has_the_requested_size_and_content(click_doc, tmp_path):
    out = render_plot(click_doc, tmp_path / "clicks.png")
    assert out == tmp_path / "clicks.png"
    assert_drawn(out, click_doc)


def test_waveform_from_decoded_audio_is_drawn(click_doc, click_file, tmp_path):
    audio = decode(probe(click_file))
    out = render_plot(click_doc, tmp_path / "wave.png", audio=audio)
    assert_drawn(out, click_doc)
    fig = build_figure(click_doc, audio=audio)
    assert fig.axes[1].get_ylabel() == "waveform"
    outline = fig.axes[1].collections[0].get_paths()[0].vertices[:, 1]
    assert outline.max() == pytest.approx(float(audio.mono.max()), rel=1e-3)
    assert outline.min() == pytest.approx(float(audio.mono.min()), rel=1e-3)


def test_sections_are_bands_above_the_bars_coloured_by_letter_and_named(tmp_path):
    doc = song_doc()
    out = render_plot(doc, tmp_path / "form.png")
    pixels = (mpimg.imread(out)[..., :3] * 255).round().astype(int)
    fig = build_figure(doc)
    band, wave = fig.axes[0].get_position(), fig.axes[1].get_position()
    assert band.y0 > wave.y1, "the sections strip is above the waveform and its bars"
    row = round((1 - (band.y0 + band.y1) / 2) * pixels.shape[0])
    px_per_s = (pixels.shape[1] - LEFT_IN * DPI - 0.3 * DPI) / doc["file"]["duration"]
    colours = dict(zip("ABCDE", SECTION_COLOURS))
    for section in doc["timeline"]["sections"]:
        x = round(LEFT_IN * DPI + (section["start"] + 0.1 * (section["end"] - section["start"])) * px_per_s)
        expected = [int(colours[section["letter"]][i:i + 2], 16) for i in (1, 3, 5)]
        assert np.abs(pixels[row, x] - expected).max() <= 2, (section, pixels[row, x])
    names = [t.get_text() for t in fig.axes[0].texts]
    assert names == [f"{label} {letter}" for label, letter, _n in FORM]


def test_no_sections_leaves_the_strip_empty_and_says_so():
    doc = song_doc()
    doc["timeline"]["sections"] = []
    fig = build_figure(doc)
    assert [t.get_text() for t in fig.axes[0].texts] == ["no sections"]
    assert not fig.axes[0].collections


def test_waveform_envelope_of_a_long_file_matches_the_whole_signal():
    rng = np.random.default_rng(1)
    n = 2 * ENVELOPE_BLOCK + 12345
    samples = (rng.standard_normal((n, 2)) * np.linspace(0.01, 0.5, n)[:, None]).astype(np.float32)
    audio = Audio(info=AudioInfo("long.wav", 1, "wav", n / SR, SR, 2), samples=samples)
    times, low, high, rms = waveform_envelope(audio, 1000)
    mono = samples.mean(axis=1)[: (n // 1000) * 1000].reshape(1000, -1)
    np.testing.assert_allclose(low, mono.min(axis=1), rtol=1e-6)
    np.testing.assert_allclose(high, mono.max(axis=1), rtol=1e-6)
    np.testing.assert_allclose(rms, np.sqrt(np.mean(mono.astype(np.float64) ** 2, axis=1)), rtol=1e-5)
    assert times[0] == pytest.approx(0.5 * (n // 1000) / SR) and np.all(np.diff(times) > 0)


def test_an_analysed_click_track_numbers_every_bar_and_titles_its_summary(click_doc):
    fig = build_figure(click_doc)
    numbers = bar_numbers(fig)
    bars = click_doc["timeline"]["bars"]
    assert len(bars) >= 8
    assert sorted(int(t.get_text()) for t in numbers) == sorted(b["bar"] for b in bars if b["bar"] >= 1)
    assert not overlapping(numbers)
    title = fig.texts[0].get_text()
    assert title.startswith("plot_clicks.wav") and f"{click_doc['summary']['bpm']:.1f} BPM" in title


def test_a_three_minute_song_names_every_chord_change_without_overlap():
    doc = song_doc()
    fig = build_figure(doc)
    chords = fig.axes[2].texts
    assert [t.get_text() for t in chords] == [chord_name(b["chord"]) for b in doc["timeline"]["bars"]]
    assert not overlapping(list(chords))
    numbers = bar_numbers(fig)
    assert len(numbers) >= 45 and not overlapping(numbers)
    assert len(fig.axes[1].collections) == 2, "beat lines and bar lines"


def test_svg_is_well_formed_and_names_its_file(click_doc, tmp_path):
    """The html plot is the interactive page: tests/test_plot_page.py."""
    svg = render_plot(click_doc, tmp_path / "clicks.svg")
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    text = svg.read_text()
    assert "plot_clicks.wav" in text
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.IGNORECASE)


def test_unknown_suffix_is_refused(click_doc, tmp_path):
    with pytest.raises(ValueError, match=r"\.pdf"):
        render_plot(click_doc, tmp_path / "clicks.pdf")
    assert not (tmp_path / "clicks.pdf").exists()


def test_silence_renders_a_valid_image(analyzer, media, tmp_path):
    path = write_wav(media / "plot_silence.wav", np.zeros(SR * 5, dtype=np.float32))
    doc = analyzer.analyze(path)
    assert doc["timeline"]["beats"] == [] and doc["timeline"]["bars"] == []
    out = render_plot(doc, tmp_path / "silence.png", audio=decode(probe(path)))
    pixels = mpimg.imread(out)
    assert pixels.shape[:2] == expected_pixels(doc)
    fig = build_figure(doc)
    messages = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert {"no beats", "no chords", "no key", "no tempo"} <= messages


def test_an_hour_long_mix_renders_quickly_with_thinned_labels(tmp_path):
    doc = mix_doc()
    started = time.perf_counter()
    out = render_plot(doc, tmp_path / "mix.png")
    assert time.perf_counter() - started < 30.0
    assert_drawn(out, doc)
    assert figure_size(doc["file"]["duration"])[0] > figure_size(180.0)[0]
    fig = build_figure(doc)
    numbers = bar_numbers(fig)
    assert 10 <= len(numbers) <= 100
    assert not overlapping(numbers)
    chords = list(fig.axes[2].texts)
    assert 10 <= len(chords) <= len(numbers)
    assert not overlapping(chords)
    numbered_times = {float(t.xy[0]) for t in numbers}
    assert {float(t.xy[0]) for t in chords} <= numbered_times, "chord names sit under numbered bars"
    (bar_lines,) = fig.axes[1].collections
    assert len(bar_lines.get_segments()) == len(numbers), "no beat lines, bar lines only where numbered"
    svg_text = render_plot(doc, tmp_path / "mix.svg").read_text()
    assert svg_text.count("<text") < 600


@pytest.mark.parametrize(("n_items", "width_px", "min_px", "expected"), [
    (0, 1000, 30, 1),
    (10, 1000, 30, 1),
    (100, 1000, 30, 4),
    (1800, 3870, 35, 32),
    (5, 0, 30, 8),
])
def test_label_stride_is_the_smallest_power_of_two_that_leaves_room(n_items, width_px, min_px, expected):
    stride = label_stride(n_items, width_px, min_px)
    assert stride == expected
    if n_items and width_px:
        assert stride * width_px / n_items >= min_px or stride >= n_items
        assert stride == 1 or (stride // 2) * width_px / n_items < min_px


def test_chord_names_use_lead_sheet_spelling():
    assert [chord_name(c) for c in ["A:min", "C:maj", "G:7", "D:min7", "F#:maj/3", "Bb:min/b3", "B:hdim7",
                                    "C:maj7/7", "G:sus4", "C:maj6", "A:min6/6", "C:aug/#5", "B:dim7"]] == \
        ["Am", "C", "G7", "Dm7", "F#/A#", "Bbm/Db", "Bm7b5", "Cmaj7/B", "Gsus4", "C6", "Am6/F#", "Caug/G#", "Bdim7"]


def test_full_chord_names_where_they_fit_majmin_names_where_space_is_short():
    runs = [(0.0, 4.0, "C:maj7/3"), (4.0, 4.2, "D:min7"), (4.2, 8.0, "G:7")]
    assert fitting_names(runs, lambda text: 10.0 * len(text), px_per_s=20.0) == ["Cmaj7/E", "Dm", "G7"]
