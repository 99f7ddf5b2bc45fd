"""The timeline as one interactive HTML page: an overview strip, a zoomable detail view with a lane per kind of
event, and an audio player whose playhead moves along the lanes.

A static picture of a 20-minute mix is either too wide to look at or too
small to read; a page that zooms can show every bar of it, and one that plays
the file lets a listener check a bar line or a chord by ear. The page is one
file that works offline: the script and styles are inline (render/page/), the
timeline goes in as JSON, and the audio is either linked relative to the page
(so the page and the music can move together) or embedded as base64 on
request. Drawing happens in the browser, where the label thinning can follow
the zoom; Python only reduces the sidecar to what the lanes need.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from beatwatch.analysis.audio.decode import Audio

from .plot import (chord_name, harmony_colour, merged_bar_chords, merged_runs, section_colours, title_text,
                   timeline_duration, waveform_envelope)

# The waveform lane gets this many min/max columns per second, up to WAVE_MAX_COLUMNS for long mixes.
WAVE_COLUMNS_PER_S = 25
WAVE_MAX_COLUMNS = 40000
# The energy curve is cut down to this many points: the overview strip is never wider, and the detail view has
# the waveform whenever the audio is there.
ENERGY_MAX_POINTS = 4000
MIME_TYPES = {".mp3": "audio/mpeg", ".flac": "audio/flac", ".wav": "audio/wav", ".ogg": "audio/ogg",
              ".oga": "audio/ogg", ".opus": "audio/ogg", ".m4a": "audio/mp4", ".mp4": "audio/mp4",
              ".aac": "audio/aac", ".webm": "audio/webm", ".aif": "audio/aiff", ".aiff": "audio/aiff"}


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb)


def _chord_colour(label: str) -> str:
    return _hex(harmony_colour(label.split(":")[0], ":min" in label))


def _chord_runs(timeline: dict) -> list[tuple[float, float, str]]:
    """Chord spans: the chord timeline when there is one (it sees changes inside a bar), else the bars' chords;
    no-chord spans dropped, repeats merged."""
    spans = [(c["start"], c["end"], c["label"]) for c in timeline.get("chords") or []]
    return merged_runs(spans) if spans else merged_bar_chords(timeline.get("bars") or [])


def _rounded(values: Any, digits: int) -> list[float | None]:
    return [None if v is None or not math.isfinite(float(v)) else round(float(v), digits) for v in values]


def _energy(timeline: dict) -> dict[str, Any]:
    energy = timeline.get("energy") or {}
    values = np.array([np.nan if v is None else v for v in energy.get("values") or []], dtype=float)
    hop = float(energy.get("hop_s") or 0.5)
    if len(values) > ENERGY_MAX_POINTS:
        per = math.ceil(len(values) / ENERGY_MAX_POINTS)
        padded = np.full(per * math.ceil(len(values) / per), np.nan)
        padded[:len(values)] = values
        with np.errstate(all="ignore"):
            values = np.nanmax(padded.reshape(-1, per), axis=1)
        hop *= per
    return {"hop": hop, "values": _rounded(values, 3)}


def _wave(audio: Audio | None, duration: float) -> dict[str, Any] | None:
    if audio is None or not len(audio.samples):
        return None
    columns = int(min(WAVE_MAX_COLUMNS, max(1.0, duration * WAVE_COLUMNS_PER_S)))
    times, low, high, _rms = waveform_envelope(audio, columns)
    hop = float(times[1] - times[0]) if len(times) > 1 else duration
    peak = max(float(np.max(np.abs([low, high]))), 1e-6)
    return {"hop": hop, "lo": _rounded(low / peak, 3), "hi": _rounded(high / peak, 3)}


def page_data(doc: dict, audio: Audio | None = None) -> dict[str, Any]:
    """What the page draws, in short parallel lists (a 3-hour mix has tens of thousands of beats)."""
    timeline = doc.get("timeline", {})
    duration = timeline_duration(doc)
    beats = sorted(timeline.get("beats") or [], key=lambda b: b["time"])
    bars = sorted(timeline.get("bars") or [], key=lambda b: b["time"])
    sections = timeline.get("sections") or []
    colour = section_colours(sections)
    title, _, summary = title_text(doc).partition("\n")
    return {
        "title": title,
        "summary": summary,
        "duration": round(duration, 3),
        "beats": {"t": [round(b["time"], 3) for b in beats], "pos": [b.get("position") or 0 for b in beats]},
        "bars": {"n": [b["bar"] for b in bars], "t": [round(b["time"], 3) for b in bars],
                 "d": [round(b.get("duration") or 0.0, 3) for b in bars],
                 "loud": _rounded([b.get("loudness") for b in bars], 2)},
        "chords": [[round(s, 3), round(e, 3), chord_name(label), _chord_colour(label)]
                   for s, e, label in _chord_runs(timeline)],
        "keys": [[round(k["start"], 3), round(k["end"], 3), k["key"],
                  _hex(harmony_colour((k["key"].split() or [""])[0], k["key"].endswith("minor")))]
                 for k in timeline.get("keys") or []],
        "sections": [[round(s["start"], 3), round(s["end"], 3), s["label"], s["letter"], s.get("bar"),
                      colour[s["letter"]]] for s in sections],
        "tempo": [[round(t["time"], 3), round(t["bpm"], 2)] for t in timeline.get("tempo") or [] if t.get("bpm")],
        "lufs": doc.get("summary", {}).get("loudness_lufs"),
        "energy": _energy(timeline),
        "wave": _wave(audio, duration),
    }


def audio_source(audio_path: Path, page: Path, *, embed: bool) -> str:
    """The player's src: the audio's path relative to the page's folder, or the whole file as a data: URL."""
    if embed:
        mime = MIME_TYPES.get(audio_path.suffix.lower(), "application/octet-stream")
        return f"data:{mime};base64," + base64.b64encode(audio_path.read_bytes()).decode("ascii")
    relative = os.path.relpath(audio_path.absolute(), page.absolute().parent)
    return quote(Path(relative).as_posix())


def _asset(name: str) -> str:
    return resources.files("beatwatch.render").joinpath("page", name).read_text(encoding="utf-8")


def _script_json(data: dict[str, Any]) -> str:
    """JSON that cannot end its <script> element early."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def timeline_page(doc: dict, audio_src: str | None, *, audio: Audio | None = None) -> str:
    """The page's text; audio_src None leaves the player without a file."""
    data = page_data(doc, audio)
    source = "" if audio_src is None else f' src="{html.escape(audio_src)}"'
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(data['title'])}</title>\n<style>\n{_asset('timeline.css')}</style>\n</head>\n<body>\n"
        f"<header><h1>{html.escape(data['title'])}</h1><p class=\"summary\">{html.escape(data['summary'])}</p>"
        "</header>\n"
        "<div class=\"controls\">"
        f"<audio id=\"player\" controls preload=\"auto\"{source}></audio>"
        "<label><input type=\"checkbox\" id=\"clicks\"> beat clicks</label>"
        "<label><input type=\"checkbox\" id=\"follow\" checked> follow playhead</label>"
        "<span class=\"zoom\"><button id=\"zoom-out\" title=\"zoom out (-)\">&minus;</button>"
        "<button id=\"zoom-in\" title=\"zoom in (+)\">+</button>"
        "<button id=\"zoom-fit\" title=\"whole file (0)\">fit</button></span>"
        "<span id=\"audio-error\" hidden></span></div>\n"
        "<div class=\"readout\"><span id=\"position\"></span><span id=\"hover\"></span></div>\n"
        "<svg id=\"overview\" role=\"img\" aria-label=\"overview\"></svg>\n"
        "<svg id=\"detail\" role=\"img\" aria-label=\"timeline\"></svg>\n"
        "<p class=\"help\">wheel: zoom &middot; drag or shift+wheel: move &middot; click a bar or a section: play "
        "from there &middot; overview: jump &middot; space: play/pause &middot; + / &minus; / 0: zoom</p>\n"
        f"<script type=\"application/json\" id=\"timeline-data\">{_script_json(data)}</script>\n"
        f"<script>\n{_asset('timeline.js')}</script>\n</body>\n</html>\n"
    )
