"""Long files: chunked decoding and windowed beat decoding must agree with the file analysed in one piece."""

from __future__ import annotations

import mir_eval
import numpy as np
import pytest

from beatwatch.analysis.pipeline import Analyzer
from tests.helpers import click_track, encode, write_wav


@pytest.fixture(scope="module")
def long_song(media):
    """150 s, longer than one beat-decoding window (120 s), so the DBN seam is crossed too."""
    signal, truth = click_track(124, seconds=150.0)
    return encode(write_wav(media / "long_mix.wav", signal), media / "long_mix.flac"), truth


@pytest.mark.slow
def test_chunks_and_windows_leave_no_gap_double_beat_or_bar_jump(analyzer, long_song):
    path, truth = long_song
    whole = analyzer.analyze(path)
    chunked = Analyzer(analyzer.networks, chunk_s=30).analyze(path)
    assert whole["file"]["duration"] == chunked["file"]["duration"]
    beats = chunked["timeline"]["beats"]
    times = np.array([b["time"] for b in beats])
    gaps = np.diff(times)
    assert gaps.min() > 0.8 * 60 / 124 and gaps.max() < 1.2 * 60 / 124, "no double beat, no gap"
    positions = [b["position"] for b in beats]
    assert all(b == a % 4 + 1 for a, b in zip(positions, positions[1:])), "bar positions run on"
    bars = [b["bar"] for b in beats]
    assert all(b - a in (0, 1) for a, b in zip(bars, bars[1:])), "bar numbers never jump"
    reference = np.array([b["time"] for b in whole["timeline"]["beats"]])
    assert len(times) == len(reference)
    assert np.abs(times - reference).max() <= 0.011
    assert [b["position"] for b in whole["timeline"]["beats"]] == positions
    assert mir_eval.beat.f_measure(truth, times) > 0.99
    assert chunked["summary"]["loudness_lufs"] == pytest.approx(whole["summary"]["loudness_lufs"], abs=0.01)
    assert chunked["timeline"]["energy"]["values"] == whole["timeline"]["energy"]["values"]
    assert [c["label"] for c in chunked["timeline"]["chords"]] == [c["label"] for c in whole["timeline"]["chords"]]


def test_core_frames_tile_the_file():
    from beatwatch.analysis.audio.decode import Chunk
    from beatwatch.analysis.pipeline import core_frames

    total_frames, taken = 1001, []
    # 10.005 s of audio in chunks of 3 s with 1 s margins, as stream() makes them.
    n, chunk, margin = 441225, 132300, 44100
    core = 0
    while core < n:
        offset = max(core - margin, 0)
        end = min(core + chunk + margin, n)
        c = Chunk(offset=offset, samples=np.zeros((end - offset, 1)), core_start=core - offset,
                  core_end=min(core + chunk, n) - offset)
        frames = int(np.ceil((end - offset) / 441))
        part = core_frames(c, frames, 100)
        taken.extend(range(offset // 441 + part.start, offset // 441 + part.stop))
        core += chunk
    assert taken == list(range(total_frames))
