"""The real-dev table's footing: clips and truth read as the shared folder writes them, scores, the verdict."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import realdev

BPM = 96.0


def _clip_folder(tmp_path, *, bpm=None, meter=4):
    """One clip: 30 s of annotated beats at BPM in 4/4 (truth only; the audio file just has to exist)."""
    beat = 60.0 / BPM
    beats = [{"time": round(1.0 + i * beat, 4), "position": i % 4 + 1} for i in range(int(29 / beat))]
    truth = {"file": "clip.flac", "beats": beats, "downbeats": [b["time"] for b in beats if b["position"] == 1]}
    if bpm is not None:
        truth["bpm"] = bpm
    if meter is not None:
        truth["meter"] = meter
    (tmp_path / "clip.truth.json").write_text(json.dumps(truth))
    (tmp_path / "clip.flac").write_bytes(b"")
    return truth


def _sidecar(times, positions, bpm, meter=4):
    return {"summary": {"bpm": bpm, "meter": meter},
            "timeline": {"beats": [{"time": float(t), "position": int(p)} for t, p in zip(times, positions)]}}


def test_clip_without_bpm_is_scored_on_the_tempo_its_beats_keep(tmp_path):
    truth = _clip_folder(tmp_path)
    (clip,) = realdev.load_clips(tmp_path)
    assert not clip.bpm_given and clip.bpm == pytest.approx(BPM, rel=0.01)
    times = [b["time"] for b in truth["beats"]]
    right = realdev.score_clip(clip, _sidecar(times, [b["position"] for b in truth["beats"]], BPM))
    assert right == {"beat_f": 1.0, "beat_amlt": 1.0, "downbeat_f": 1.0, "meter": 1.0, "tempo_acc1": 1.0}
    doubled = np.sort(np.concatenate([times, np.array(times[:-1]) + 30.0 / BPM]))
    octave = realdev.score_clip(clip, _sidecar(doubled, np.arange(len(doubled)) % 4 + 1, 2 * BPM))
    assert octave["tempo_acc1"] == 0.0 and octave["beat_f"] < 0.7 and octave["beat_amlt"] > 0.95


def test_given_bpm_wins_and_no_meter_field_means_no_meter_score(tmp_path):
    _clip_folder(tmp_path, bpm=90.0, meter=None)
    (clip,) = realdev.load_clips(tmp_path)
    assert clip.bpm_given and clip.bpm == 90.0
    assert "meter" not in realdev.score_clip(clip, _sidecar([], [], 90.0))


def test_a_clip_where_madmom_is_ahead_fails_the_verdict(tmp_path):
    truth = _clip_folder(tmp_path)
    (clip,) = realdev.load_clips(tmp_path)
    times = [b["time"] for b in truth["beats"]]
    positions = [b["position"] for b in truth["beats"]]
    shifted = [(p % 4) + 1 for p in positions]  # bars one beat off
    right = _sidecar(times, positions, BPM)
    answers = {"madmom": right, "madmom_bars": right, "essentia": right}
    row = realdev.evaluate(clip, _sidecar(times, shifted, BPM), answers)
    assert row["worse_than_madmom"] == ["downbeat_f"]
    assert realdev.verdict([row], peers=True).startswith("below")
    even = realdev.evaluate(clip, right, answers)
    assert even["worse_than_madmom"] == [] and realdev.verdict([even], peers=True).startswith("PASS")
    missing = realdev.evaluate(clip, None, answers)
    assert missing["problem"] and realdev.verdict([missing], peers=True).startswith("below")


def test_the_folder_comes_from_the_environment_else_beside_the_repository(monkeypatch, tmp_path):
    monkeypatch.setenv(realdev.ENV, str(tmp_path))
    assert realdev.real_dev_dir() == tmp_path
    monkeypatch.delenv(realdev.ENV)
    assert realdev.real_dev_dir() == realdev.ROOT.parent / "shared" / "real-dev"
    assert realdev.run(tmp_path / "absent") is None
