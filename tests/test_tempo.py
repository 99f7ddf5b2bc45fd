"""The tempo to two decimals, its curve, and the tempo range the beats are tracked in (issue 15)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from beatwatch.analysis.pipeline import Analyzer
from beatwatch.analysis.rhythm.tempo import estimate_tempo, jitter, local_tempo, pieces
from tests.helpers import click_track, drum_loop, write_wav

# Drum and bass's two-step at 172 BPM: kicks on 1 and the "and" of 3, snares on 2 and 4; hip-hop's boom bap at
# 86: kicks on 1, the "and" of 2 and 3, snares on 2 and 4.
DNB = {"bpm": 172.0, "kicks": (0.0, 2.5), "snares": (1.0, 3.0)}
HIP_HOP = {"bpm": 86.0, "kicks": (0.0, 1.5, 2.0), "snares": (1.0, 3.0)}


def _on_frames(times: np.ndarray, fps: float = 100.0) -> np.ndarray:
    """Beat times as the tracker gives them: on the 100 fps activation frames."""
    return np.round(times * fps) / fps


def test_a_steady_tempo_between_whole_frames_reads_to_two_decimals_with_a_flat_curve():
    truth = 0.5 + np.arange(160) * 60.0 / 138.88
    beats = _on_frames(truth + np.random.default_rng(0).normal(0.0, 0.003, len(truth)))
    assert 60.0 / np.median(np.diff(beats)) == pytest.approx(139.53, abs=0.01)  # what intervals alone say
    tempo = estimate_tempo(beats, np.ones(len(beats)))
    assert tempo.bpm == pytest.approx(138.88, abs=0.02)
    assert np.ptp(tempo.curve_bpm) < 0.01


def test_a_ramp_is_followed_and_a_step_kept_sharp():
    ramp = _on_frames(0.5 + np.concatenate([[0.0], np.cumsum(60.0 / np.linspace(100.0, 115.0, 120))]))
    curve = local_tempo(ramp)
    expected = np.concatenate([[100.0], np.linspace(100.0, 115.0, 120)])
    assert np.max(np.abs(curve - expected)[4:-4]) < 0.5
    assert {degree for _lo, _hi, degree in pieces(ramp, jitter(ramp))} == {2}  # ramped pieces, not a staircase
    step = _on_frames(np.concatenate([np.arange(64) * 0.5, 32.0 + np.arange(64) * 60.0 / 126.0]))
    curve = local_tempo(step)
    assert np.allclose(curve[:63], 120.0, atol=0.05) and np.allclose(curve[65:], 126.0, atol=0.05)


def test_a_tempo_that_wanders_is_followed_beat_by_beat():
    period = 60.0 / (140.0 * (1 + 0.05 * np.sin(np.arange(96) * 2 * np.pi / 18)))
    beats = _on_frames(np.concatenate([[0.5], 0.5 + np.cumsum(period)]))
    curve = local_tempo(beats)[1:]
    assert np.max(np.abs(curve / (60.0 / period) - 1)) < 0.04


def test_a_song_tracked_at_two_levels_reads_the_tempo_it_holds_longest():
    """A ritardando takes the tracker onto the eighths (167 BPM) for the first phrase and back to the quarters
    (84) for the rest: the median over the beats (104) is a tempo never played; read in one octave the stretches
    agree, and the quarters, held for most of the song's seconds, are the octave."""
    eighths = 0.5 + np.arange(20) * 60.0 / 167.0
    slowing = eighths[-1] + np.cumsum(60.0 / np.linspace(160.0, 90.0, 12))
    quarters = slowing[-1] + np.arange(1, 32) * 60.0 / 84.0
    beats = _on_frames(np.concatenate([eighths, slowing, quarters]))
    assert 90.0 < float(np.median(local_tempo(beats))) < 110.0  # what the plain median says
    assert estimate_tempo(beats, np.ones(len(beats))).bpm == pytest.approx(84.0, rel=0.01)
    swapped = _on_frames(np.concatenate([0.5 + np.arange(60) * 60.0 / 167.0, 0.5 + 60 * 60.0 / 167.0
                                         + np.arange(1, 10) * 60.0 / 84.0]))
    assert estimate_tempo(swapped, np.ones(len(swapped))).bpm == pytest.approx(167.0, rel=0.01)


def test_a_steady_click_track_off_the_frame_grid_reads_within_005_bpm(analyzer, media):
    signal, _ = click_track(138.88, seconds=30.0)
    doc = analyzer.analyze(write_wav(media / "click-138.88.wav", signal))
    assert doc["summary"]["bpm"] == pytest.approx(138.88, abs=0.05)
    curve = [point["bpm"] for point in doc["timeline"]["tempo"]]
    assert max(curve) - min(curve) <= 0.02


@pytest.mark.parametrize("loop,tempo_range,expected", [
    (DNB, (60.0, 100.0), 86.0), (DNB, (150.0, 200.0), 172.0),
    (HIP_HOP, (60.0, 100.0), 86.0), (HIP_HOP, (150.0, 200.0), 172.0),
])
def test_the_tempo_range_picks_the_level_the_beats_are_tracked_at(analyzer, media, loop, tempo_range, expected):
    signal, truth = drum_loop(loop["bpm"], kicks=loop["kicks"], snares=loop["snares"])
    low, high = tempo_range
    doc = Analyzer(analyzer.networks, min_bpm=low, max_bpm=high).analyze(
        write_wav(media / f"loop-{loop['bpm']:g}.wav", signal))
    assert doc["summary"]["bpm"] == pytest.approx(expected, rel=0.01)
    beats = np.array([b["time"] for b in doc["timeline"]["beats"]])
    assert len(beats) == pytest.approx(len(truth) * expected / loop["bpm"], rel=0.1)
    assert f"{low:g}-{high:g} BPM" in doc["analyzer"]["analyses"]["beats"]


@pytest.mark.slow
def test_analyze_takes_the_tempo_range_from_the_config(media, tmp_path):
    signal, _ = drum_loop(DNB["bpm"], kicks=DNB["kicks"], snares=DNB["snares"], seconds=12.0)
    audio = write_wav(tmp_path / "two-step.wav", signal)  # 172 BPM in the default range
    (tmp_path / "beatwatch.toml").write_text("[analysis]\nmin_bpm = 60\nmax_bpm = 100\n")
    result = subprocess.run([str(Path(sys.executable).with_name("beatwatch")), "analyze", str(audio), "--out",
                             str(tmp_path / "out"), "--no-db"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    sidecar = json.loads(next((tmp_path / "out").glob("*.beatwatch.json")).read_text())
    assert sidecar["summary"]["bpm"] == pytest.approx(86.0, rel=0.01)
    assert "60-100 BPM" in sidecar["analyzer"]["analyses"]["beats"]
