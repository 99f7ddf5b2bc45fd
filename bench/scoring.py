"""Accuracy of one song: its ground truth against a beatwatch sidecar, both as parsed JSON.

The ground truth has the sidecar's own shape (summary + timeline), so
`score(truth, truth)` is all ones, which keeps these functions honest. The
measures follow MIREX as mir_eval implements it; a part missing from the
sidecar scores 0 (an analysis that says nothing is wrong), while a part
that is present but malformed raises SidecarError naming the measure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import mir_eval
import numpy as np

BEAT_WINDOW_S = 0.07
TEMPO_TOLERANCE = 0.04
CURVE_STEP_S = 0.05
KEY_CHANGE_BARS = 2
# Where tempo precision reads a constant grid's drift: 64 bars, a long DJ mix-in.
GRID_BARS = 64


class SidecarError(ValueError):
    """A sidecar part that exists but cannot be read (unsorted, bad label, wrong type)."""


def _times(items: Sequence[dict], field: str = "time") -> np.ndarray:
    return np.sort(np.array([float(item[field]) for item in items], dtype=np.float64))


def beat_f_measure(reference: np.ndarray, estimated: np.ndarray) -> float:
    """mir_eval's F-measure with a 70 ms window, both lists trimmed to beats after 5 s as mir_eval does."""
    reference = mir_eval.beat.trim_beats(np.sort(reference))
    estimated = mir_eval.beat.trim_beats(np.sort(estimated))
    if reference.size == 0:
        raise ValueError("the ground truth has no beats after 5 s")
    if estimated.size == 0:
        return 0.0
    return float(mir_eval.beat.f_measure(reference, estimated, f_measure_threshold=BEAT_WINDOW_S))


def beat_amlt(reference: np.ndarray, estimated: np.ndarray) -> float:
    """mir_eval's AMLt (continuity allowing double, half and off-beat tapping), both lists trimmed as for F."""
    reference = mir_eval.beat.trim_beats(np.sort(reference))
    estimated = mir_eval.beat.trim_beats(np.sort(estimated))
    if reference.size < 2:
        raise ValueError("the ground truth has fewer than two beats after 5 s")
    if estimated.size < 2:
        return 0.0
    return float(mir_eval.beat.continuity(reference, estimated)[3])


def tempo_acc1(reference_bpm: float, estimated_bpm: float | None) -> float:
    """1 when the estimate is within 4 % of the truth; half or double tempo is wrong."""
    if estimated_bpm is None:
        return 0.0
    return float(abs(float(estimated_bpm) - reference_bpm) <= TEMPO_TOLERANCE * reference_bpm)


def _curve(points: Sequence[dict], grid: np.ndarray) -> np.ndarray:
    ordered = sorted(points, key=lambda p: float(p["time"]))
    return np.interp(grid, [float(p["time"]) for p in ordered], [float(p["bpm"]) for p in ordered])


def tempo_curve_accuracy(reference: Sequence[dict], estimated: Sequence[dict], start: float, end: float) -> float:
    """Share of the music (sampled every 50 ms) where the interpolated estimated tempo is within 4 % of the truth."""
    if not estimated:
        return 0.0
    grid = np.arange(start, end, CURVE_STEP_S)
    truth = _curve(reference, grid)
    return float(np.mean(np.abs(_curve(estimated, grid) - truth) <= TEMPO_TOLERANCE * truth))


def _labelled(segments: Sequence[dict]) -> tuple[np.ndarray, list[str]]:
    ordered = sorted(segments, key=lambda s: float(s["start"]))
    intervals = np.array([[float(s["start"]), float(s["end"])] for s in ordered], dtype=np.float64)
    return intervals.reshape(-1, 2), [str(s["label"]) for s in ordered]


def chord_majmin(reference: Sequence[dict], estimated: Sequence[dict]) -> float:
    """Duration-weighted majmin accuracy over the truth's span, as mir_eval.chord.evaluate computes it."""
    return chord_accuracy(reference, estimated, mir_eval.chord.majmin)


def chord_accuracy(reference: Sequence[dict], estimated: Sequence[dict],
                   compare: Callable[[list[str], list[str]], np.ndarray]) -> float:
    """Duration-weighted accuracy over the truth's span under one of mir_eval.chord's comparisons."""
    ref_intervals, ref_labels = _labelled(reference)
    if not estimated:
        return 0.0
    est_intervals, est_labels = _labelled(estimated)
    est_intervals, est_labels = mir_eval.util.adjust_intervals(
        est_intervals, est_labels, ref_intervals.min(), ref_intervals.max(),
        mir_eval.chord.NO_CHORD, mir_eval.chord.NO_CHORD)
    intervals, ref_labels, est_labels = mir_eval.util.merge_labeled_intervals(
        ref_intervals, ref_labels, est_intervals, est_labels)
    durations = mir_eval.util.intervals_to_durations(intervals)
    return float(mir_eval.chord.weighted_accuracy(compare(ref_labels, est_labels), durations))


def bar_chord_accuracy(reference_bars: Sequence[dict], reference_chords: Sequence[dict],
                       estimated_bars: Sequence[dict]) -> float | None:
    """Share of one-chord bars whose sidecar bar (starting within half a beat) names that chord (majmin).

    Bars holding two chords have no single right answer and are skipped, and so are bars whose chord
    majmin does not judge; None when no bar qualifies.
    """
    estimated_times = np.array([float(b["time"]) for b in estimated_bars])
    hits = []
    for bar in reference_bars:
        start, end = float(bar["time"]), float(bar["time"]) + float(bar["duration"])
        if sum(1 for c in reference_chords if min(end, c["end"]) - max(start, c["start"]) > 1e-6) != 1:
            continue
        label = mir_eval.chord.NO_CHORD
        if estimated_times.size:
            nearest = int(np.argmin(np.abs(estimated_times - start)))
            if abs(estimated_times[nearest] - start) <= float(bar["duration"]) / int(bar["beats"]) / 2:
                label = estimated_bars[nearest].get("chord") or mir_eval.chord.NO_CHORD
        comparison = mir_eval.chord.majmin([bar["chord"]], [label])[0]
        if comparison >= 0:  # a chord outside the majmin vocabulary (sus, hdim7) is not counted, as in chord_majmin
            hits.append(float(comparison == 1.0))
    return float(np.mean(hits)) if hits else None


def key_mirex(reference: str, estimated: str | None) -> float:
    """MIREX weighted key score: 1 same, 0.5 fifth, 0.3 relative, 0.2 parallel, else 0."""
    if not estimated:
        return 0.0
    return float(mir_eval.key.weighted_score(reference, estimated))


def key_change_recall(changes: Sequence[float], tolerances: Sequence[float], estimated_keys: Sequence[dict]) -> float:
    """Share of true key changes with a sidecar key change (a new key label) within the tolerance."""
    ordered = sorted(estimated_keys, key=lambda k: float(k["start"]))
    found = np.array([float(b["start"]) for a, b in zip(ordered, ordered[1:]) if a["key"] != b["key"]])
    hits = [found.size > 0 and bool(np.min(np.abs(found - change)) <= tol) for change, tol in zip(changes, tolerances)]
    return float(np.mean(hits))


def _bar_at(bars: Sequence[dict], time: float) -> dict:
    return max((b for b in bars if float(b["time"]) <= time + 1e-6), key=lambda b: float(b["time"]))


def score(truth: dict, sidecar: dict) -> dict[str, float]:
    """Every measure that applies to this song, each in 0..1.

    tempo_acc1 only for steady songs, tempo_curve only for ramped or stepped ones, key_change only
    for songs that modulate, bar_chord only when some bar holds a single chord.
    """
    ref, est = truth["timeline"], sidecar.get("timeline") or {}
    summary = sidecar.get("summary") or {}
    ref_beats = ref["beats"]
    measures = {
        "beat_f": lambda: beat_f_measure(_times(ref_beats), _times(est.get("beats") or [])),
        "downbeat_f": lambda: beat_f_measure(
            _times([b for b in ref_beats if b["position"] == 1]),
            _times([b for b in est.get("beats") or [] if b.get("position") == 1])),
        "meter": lambda: float(summary.get("meter") == truth["summary"]["meter"]),
        "chord_majmin": lambda: chord_majmin(ref["chords"], est.get("chords") or []),
        "bar_chord": lambda: bar_chord_accuracy(ref["bars"], ref["chords"], est.get("bars") or []),
        "key_mirex": lambda: key_mirex(truth["summary"]["key"], summary.get("key")),
    }
    if truth["tempo_kind"] == "steady":
        measures["tempo_acc1"] = lambda: tempo_acc1(truth["summary"]["bpm"], summary.get("bpm"))
    else:
        measures["tempo_curve"] = lambda: tempo_curve_accuracy(
            ref["tempo"], est.get("tempo") or [], truth["music"]["start"], truth["music"]["end"])
    if truth["key_changes"]:
        tolerances = [KEY_CHANGE_BARS * float(_bar_at(ref["bars"], t)["duration"]) for t in truth["key_changes"]]
        measures["key_change"] = lambda: key_change_recall(truth["key_changes"], tolerances, est.get("keys") or [])
    metrics = {}
    for name, measure in measures.items():
        try:
            value = measure()
        except (ValueError, KeyError, TypeError, mir_eval.chord.InvalidChordException) as error:
            raise SidecarError(f"{name}: {error}") from error
        if value is not None:
            metrics[name] = value
    return metrics


def _chord_items(reference: Sequence[dict], estimated: Sequence[dict], start: float, end: float) -> list[tuple]:
    """(confidence, share of the segment that is right in majmin, seconds) per estimated chord in the music."""
    items = []
    for seg in estimated:
        lo, hi = max(float(seg["start"]), start), min(float(seg["end"]), end)
        if hi <= lo or seg.get("confidence") is None:
            continue
        right = 0.0
        for ref in reference:
            overlap = min(hi, float(ref["end"])) - max(lo, float(ref["start"]))
            if overlap > 0 and mir_eval.chord.majmin([ref["label"]], [seg["label"]])[0] == 1.0:
                right += overlap
        items.append((float(seg["confidence"]), right / (hi - lo), hi - lo))
    return items


def confidence_items(truth: dict, sidecar: dict) -> dict[str, list[tuple[float, float, float]]]:
    """Per analysis, (confidence, correctness 0..1, weight) for each thing the sidecar gives a confidence for.

    beats: each beat in the music, right when a true beat is within 70 ms; chords: each chord segment,
    weighted by its length, right for the share of it whose majmin label matches; key: the song's key
    and its MIREX score; tempo: the song's BPM, right within 4 % of the truth's.
    """
    ref, est = truth["timeline"], sidecar.get("timeline") or {}
    summary = sidecar.get("summary") or {}
    start, end = float(truth["music"]["start"]), float(truth["music"]["end"])
    ref_beats = _times(ref["beats"])
    beats = [(float(b["confidence"]), float(np.min(np.abs(ref_beats - float(b["time"]))) <= BEAT_WINDOW_S), 1.0)
             for b in est.get("beats") or []
             if b.get("confidence") is not None and start - BEAT_WINDOW_S <= float(b["time"]) <= end + BEAT_WINDOW_S]
    items = {"beats": beats, "chords": _chord_items(ref["chords"], est.get("chords") or [], start, end)}
    if summary.get("key_confidence") is not None:
        items["key"] = [(float(summary["key_confidence"]), key_mirex(truth["summary"]["key"], summary.get("key")), 1.0)]
    if summary.get("bpm_confidence") is not None:
        right = tempo_acc1(truth["summary"]["bpm"], summary.get("bpm"))
        items["tempo"] = [(float(summary["bpm_confidence"]), right, 1.0)]
    return items


def quartile_accuracy(items: Sequence[tuple[float, float, float]]) -> tuple[float, float] | None:
    """Weighted accuracy of the least and of the most confident quarter (by weight) of `items`."""
    if len(items) < 4:
        return None
    ordered = sorted(items, key=lambda item: item[0])
    weights = np.array([w for _, _, w in ordered])
    right = np.array([r for _, r, _ in ordered])
    position = (np.cumsum(weights) - weights / 2) / weights.sum()
    low, high = position <= 0.25, position >= 0.75
    if not low.any() or not high.any():
        return None
    return (float(np.average(right[low], weights=weights[low])), float(np.average(right[high], weights=weights[high])))


def tempo_precision(truth: dict, sidecar: dict) -> dict[str, float] | None:
    """On a steady song: the BPM's error, and how far a constant grid at that BPM, laid where the sidecar's
    beats are, is from the music GRID_BARS bars later, in ms; None on other songs or without BPM and beats.

    The grid is laid at the median offset of the sidecar's beats from the true ones (a DJ places it on the
    beats; one beat's jitter should not decide it), then runs on at the reported BPM.
    """
    if truth["tempo_kind"] != "steady":
        return None
    bpm = (sidecar.get("summary") or {}).get("bpm")
    estimated = _times((sidecar.get("timeline") or {}).get("beats") or [])
    if bpm is None or estimated.size == 0:
        return None
    reference = _times(truth["timeline"]["beats"])
    true_bpm = float(truth["summary"]["bpm"])
    period = 60.0 / true_bpm
    after = np.clip(np.searchsorted(reference, estimated), 0, len(reference) - 1)
    before = np.maximum(after - 1, 0)
    offsets = np.where(np.abs(estimated - reference[before]) < np.abs(estimated - reference[after]),
                       estimated - reference[before], estimated - reference[after])
    on_beat = offsets[np.abs(offsets) <= period / 4]
    anchor = float(np.median(on_beat)) if on_beat.size else period / 2
    beats = GRID_BARS * int(truth["summary"]["meter"])
    drift = anchor + beats * (60.0 / float(bpm) - period)
    return {"bpm_error": abs(float(bpm) - true_bpm), "grid_drift_ms": abs(drift) * 1000.0}
