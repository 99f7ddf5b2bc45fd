"""Label tracks for Sonic Visualiser and Audacity, and `.lab` chord files (the MIREX / Isophonics format).

A label track is `start<TAB>end<TAB>label` per line, what Audacity's
"Import Labels" reads and Sonic Visualiser imports as a region layer: beats
(labelled with their place in the bar, zero length), bars (their number),
chords and sections. A `.lab` file is `start end label` per chord, as
mir_eval and chord datasets read them.
"""

from __future__ import annotations

from .tracks import Track

LAYERS = ("beats", "bars", "chords", "sections")


def label_rows(track: Track, layer: str) -> list[tuple[float, float, str]]:
    timeline = track.timeline
    if layer == "beats":
        return [(b["time"], b["time"], str(b.get("position") or "")) for b in timeline.get("beats") or []]
    if layer == "bars":
        return [(b["time"], b["time"] + b["duration"], str(b["bar"])) for b in timeline.get("bars") or []]
    if layer == "chords":
        return [(c["start"], c["end"], str(c["label"])) for c in timeline.get("chords") or []]
    if layer == "sections":
        return [(s["start"], s["end"], str(s["label"])) for s in timeline.get("sections") or []]
    raise ValueError(f"no label layer {layer!r}; the layers are {', '.join(LAYERS)}")


def label_track(track: Track, layer: str) -> str:
    return "".join(f"{start:.3f}\t{end:.3f}\t{label}\n" for start, end, label in label_rows(track, layer))


def chord_lab(track: Track) -> str:
    return "".join(f"{start:.3f} {end:.3f} {label}\n" for start, end, label in label_rows(track, "chords"))
