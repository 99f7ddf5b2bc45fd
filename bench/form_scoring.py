"""Accuracy of a song's form and of its seventh chords, on top of bench/scoring.py's measures.

Sections are scored as mir_eval.segment does for MIREX structure
analysis, over the music only (from the first downbeat to the end of the
last bar, shifted to start at 0): the song's own start and end are not
boundaries anyone can miss, so they are trimmed. Letters are the
clustering (pairwise frame F); the functional label (intro, verse ...) is
scored as the share of time where it equals the truth's.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import mir_eval
import numpy as np

from .scoring import SidecarError, chord_accuracy, score

FRAME_S = 0.1
HIT_WINDOWS_S = {"section_hit_05": 0.5, "section_hit_3": 3.0}
SECTION_MEASURES = (*HIT_WINDOWS_S, "section_pairwise", "section_label")


def _intervals(sections: Sequence[dict], start: float, end: float, field: str) -> tuple[np.ndarray, list[str]]:
    """The sections cut (or padded) to the music [start, end], shifted so the music starts at 0."""
    ordered = sorted(sections, key=lambda s: float(s["start"]))
    intervals = np.array([[float(s["start"]), float(s["end"])] for s in ordered], dtype=np.float64).reshape(-1, 2)
    intervals, labels = mir_eval.util.adjust_intervals(intervals, [str(s[field]) for s in ordered], start, end)
    return intervals - start, list(labels)


def _label_at(intervals: np.ndarray, labels: list[str], times: np.ndarray) -> list[str]:
    index = np.clip(np.searchsorted(intervals[:, 0], times, side="right") - 1, 0, len(labels) - 1)
    return [labels[i] for i in index]


def section_scores(truth: dict, estimated: Sequence[dict], *, labels: bool = True) -> dict[str, float]:
    """Boundary hit-rate F at 0.5 s and 3 s, pairwise clustering F on letters and, when `labels`, the share
    of time whose functional label is right. An empty list scores 0 everywhere."""
    names = SECTION_MEASURES if labels else SECTION_MEASURES[:-1]
    kept = [s for s in estimated if float(s["end"]) > float(s["start"])]
    if not kept:
        return dict.fromkeys(names, 0.0)
    start, end = float(truth["music"]["start"]), float(truth["music"]["end"])
    reference = truth["timeline"]["sections"]
    ref_letters = _intervals(reference, start, end, "letter")
    est_letters = _intervals(kept, start, end, "letter")
    with warnings.catch_warnings():  # one estimated section has no inner boundary: F is 0, no need to warn
        warnings.simplefilter("ignore", UserWarning)
        scores = {name: float(mir_eval.segment.detection(ref_letters[0], est_letters[0], window=window,
                                                         trim=True)[2])
                  for name, window in HIT_WINDOWS_S.items()}
    scores["section_pairwise"] = float(mir_eval.segment.pairwise(*ref_letters, *est_letters, frame_size=FRAME_S)[2])
    if labels:
        times = np.arange(FRAME_S / 2, end - start, FRAME_S)
        ref_labels = _label_at(*_intervals(reference, start, end, "label"), times)
        est_labels = _label_at(*_intervals(kept, start, end, "label"), times)
        scores["section_label"] = float(np.mean([a == b for a, b in zip(ref_labels, est_labels)]))
    return scores


def score_arranged(truth: dict, sidecar: dict) -> dict[str, float]:
    """bench/scoring.py's measures plus chords under mir_eval's sevenths and mirex rules and, when the sidecar has a
    `timeline.sections` list (absent: not measured), the section measures."""
    metrics = score(truth, sidecar)
    timeline = sidecar.get("timeline") or {}
    try:
        metrics["chord_sevenths"] = chord_accuracy(truth["timeline"]["chords"], timeline.get("chords") or [],
                                                   mir_eval.chord.sevenths)
        metrics["chord_mirex"] = chord_accuracy(truth["timeline"]["chords"], timeline.get("chords") or [],
                                                mir_eval.chord.mirex)
        if "sections" in timeline:
            metrics.update(section_scores(truth, timeline["sections"] or []))
    except (ValueError, KeyError, TypeError, mir_eval.chord.InvalidChordException) as error:
        raise SidecarError(f"sections or sevenths: {error}") from error
    return metrics
