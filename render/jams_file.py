"""JAMS (the JSON annotation standard of MIR tools: mir_eval, msaf, jams) of one analysed track.

One annotation per namespace the timeline fills: `beat` (value: the beat's
place in its bar), `chord` (Harte labels, as the sidecar holds them),
`key_mode` ("A:minor", one observation per key segment), `tempo` (the
song's BPM) and `segment_open` (the sections' labels). Written as plain JSON
in the jams 0.3 schema, so the exporter needs no jams package at run time;
the tests load and validate it with jams.
"""

from __future__ import annotations

from typing import Any

from .tracks import Track

JAMS_VERSION = "0.3.5"


def jams_document(track: Track) -> dict[str, Any]:
    timeline, summary = track.timeline, track.summary
    duration = max(track.duration, 0.0)
    annotations = [
        _annotation("beat", [_obs(b["time"], 0.0, b.get("position"), b.get("confidence"))
                             for b in timeline.get("beats") or []], duration),
        _annotation("chord", [_obs(c["start"], c["end"] - c["start"], c["label"], c.get("confidence"))
                              for c in timeline.get("chords") or []], duration),
        _annotation("key_mode", [_obs(k["start"], k["end"] - k["start"], _key_mode(k["key"]), k.get("confidence"))
                                 for k in timeline.get("keys") or [] if _key_mode(k.get("key"))], duration),
        _annotation("segment_open", [_obs(s["start"], s["end"] - s["start"], s["label"], s.get("confidence"))
                                     for s in timeline.get("sections") or []], duration),
    ]
    if summary.get("bpm"):
        annotations.append(_annotation("tempo", [_obs(0.0, duration, float(summary["bpm"]),
                                                      _unit(summary.get("bpm_confidence")))], duration))
    metadata: dict[str, Any] = {"title": track.title, "duration": duration, "jams_version": JAMS_VERSION,
                                "identifiers": {"content_hash": track.document["file"]["content_hash"]}}
    if track.metadata("artist"):
        metadata["artist"] = track.metadata("artist")
    if track.metadata("album"):
        metadata["release"] = track.metadata("album")
    return {"file_metadata": metadata, "annotations": annotations, "sandbox": {}}


def _key_mode(key: str | None) -> str | None:
    """"A:minor" for "A minor"."""
    if not key or " " not in key:
        return None
    tonic, mode = key.split(" ", 1)
    return f"{tonic}:{mode}" if mode in ("major", "minor") else None


def _unit(value: Any) -> float | None:
    return None if value is None else min(max(float(value), 0.0), 1.0)


def _obs(time: float, duration: float, value: Any, confidence: Any) -> dict[str, Any]:
    return {"time": float(time), "duration": max(float(duration), 0.0), "value": value,
            "confidence": _unit(confidence)}


def _annotation(namespace: str, data: list[dict[str, Any]], duration: float) -> dict[str, Any]:
    from beatwatch.analysis import ANALYZER_VERSION

    return {
        "namespace": namespace,
        "data": data,
        "time": 0.0,
        "duration": duration,
        "annotation_metadata": {
            "annotator": {}, "annotation_tools": "beatwatch", "version": ANALYZER_VERSION,
            "corpus": "", "curator": {"name": "", "email": ""}, "annotation_rules": "",
            "validation": "", "data_source": "automatic analysis",
        },
        "sandbox": {},
    }
