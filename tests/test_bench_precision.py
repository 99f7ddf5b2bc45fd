"""The benchmark's tempo precision rows: BPM error and a constant grid's drift after 64 bars (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.accuracy import SongResult, precision_report
from bench.precision import precision_suite
from bench.scoring import GRID_BARS, tempo_precision


def _truth(bpm: float, kind: str = "steady", beats: int = 96) -> dict:
    times = 0.5 + np.arange(beats) * 60.0 / bpm
    return {"tempo_kind": kind, "summary": {"bpm": bpm, "meter": 4},
            "timeline": {"beats": [{"time": float(t)} for t in times]}}


def _sidecar(bpm: float, times: np.ndarray) -> dict:
    return {"summary": {"bpm": bpm}, "timeline": {"beats": [{"time": float(t)} for t in times]}}


def test_the_truth_against_itself_has_no_error_and_no_drift():
    truth = _truth(138.88)
    beats = np.array([b["time"] for b in truth["timeline"]["beats"]])
    assert tempo_precision(truth, _sidecar(138.88, beats)) == {"bpm_error": 0.0, "grid_drift_ms": pytest.approx(0.0)}


def test_a_bpm_read_off_whole_frames_drifts_half_a_second_in_64_bars():
    truth = _truth(138.88)
    beats = np.round(np.array([b["time"] for b in truth["timeline"]["beats"]]) * 100) / 100
    found = tempo_precision(truth, _sidecar(139.53, beats))
    expected_ms = GRID_BARS * 4 * (60 / 139.53 - 60 / 138.88) * 1000
    assert found["bpm_error"] == pytest.approx(0.65)
    assert found["grid_drift_ms"] == pytest.approx(abs(expected_ms), abs=6.0) and found["grid_drift_ms"] > 500


def test_the_grid_is_laid_where_the_beats_are():
    truth = _truth(120.0)
    late = np.array([b["time"] for b in truth["timeline"]["beats"]]) + 0.015
    assert tempo_precision(truth, _sidecar(120.0, late))["grid_drift_ms"] == pytest.approx(15.0)


def test_only_steady_songs_with_a_bpm_and_beats_are_measured():
    truth = _truth(120.0)
    assert tempo_precision(_truth(120.0, "ramp"), _sidecar(120.0, np.array([0.5]))) is None
    assert tempo_precision(truth, {"summary": {}, "timeline": {"beats": [{"time": 0.5}]}}) is None
    assert tempo_precision(truth, _sidecar(120.0, np.zeros(0))) is None


def test_the_report_takes_medians_and_names_the_worst_song():
    results = [SongResult(f"s{i}", "a.wav", {}, precision={"beatwatch": {"bpm_error": e, "grid_drift_ms": d},
                                                            "madmom": {"bpm_error": 1.0, "grid_drift_ms": 900.0}})
               for i, (e, d) in enumerate([(0.01, 5.0), (0.02, 8.0), (0.6, 700.0)])]
    rows = {row["key"]: row for row in precision_report(results)}
    assert rows["bpm_error"]["value"] == pytest.approx(0.02) and rows["bpm_error"]["worst"] == pytest.approx(0.6)
    assert rows["grid_drift_ms"]["value"] == pytest.approx(8.0) and rows["grid_drift_ms"]["status"] == "PASS"
    assert rows["grid_drift_ms"]["peers"] == {"madmom": 900.0, "essentia": None}


def test_precision_songs_are_steady_between_whole_bpms():
    specs = precision_suite()
    assert {spec.tempo.kind for spec in specs} == {"steady"}
    assert all(spec.tempo.bpm != round(spec.tempo.bpm) for spec in specs)
    assert len({spec.name for spec in specs}) == len(specs)
