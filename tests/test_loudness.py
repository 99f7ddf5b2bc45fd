"""EBU R128 loudness, per-span loudness and the energy curve against signals of known level."""

from __future__ import annotations

import numpy as np
import pytest

from beatwatch.analysis.loudness import energy_curve, measure_loudness, span_loudness
from tests.helpers import SR


def sine(amplitude: float, seconds: float = 10.0, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_stereo_sine_at_minus_20_dbfs_is_minus_20_lufs():
    tone = sine(0.1)
    loud = measure_loudness(np.stack([tone, tone], axis=1), SR)
    assert loud.integrated_lufs == pytest.approx(-20.0, abs=0.3)
    assert loud.range_lu == pytest.approx(0.0, abs=0.5)


def test_mono_counts_as_one_channel():
    loud = measure_loudness(sine(0.1)[:, None], SR)
    assert loud.integrated_lufs == pytest.approx(-23.0, abs=0.3)


def test_silence_has_no_loudness():
    loud = measure_loudness(np.zeros((SR * 5, 2), dtype=np.float32), SR)
    assert loud.silent and loud.integrated_lufs is None and loud.range_lu is None


def test_span_loudness_sees_the_loud_half():
    tone = np.concatenate([sine(0.01, 5.0), sine(0.3, 5.0)])
    loud = measure_loudness(np.stack([tone, tone], axis=1), SR)
    quiet, loud_part = span_loudness(loud, 1.0, 4.0), span_loudness(loud, 6.0, 9.0)
    assert loud_part - quiet == pytest.approx(20 * np.log10(30), abs=1.0)


def test_energy_curve_levels():
    curve = energy_curve(np.concatenate([sine(1.0, 2.0), np.zeros(2 * SR, np.float32), sine(0.001, 2.0)]), SR)
    assert len(curve) == 12
    assert curve[:4] == pytest.approx(1.0, abs=0.01)
    assert np.all(curve[4:8] == 0.0)
    assert curve[9] == pytest.approx(0.0, abs=0.01)



def test_meter_fed_in_pieces_equals_one_pass():
    from beatwatch.analysis.loudness import LoudnessMeter

    rng = np.random.default_rng(5)
    music = (rng.standard_normal((SR * 12, 2)) * np.linspace(0.01, 0.3, SR * 12)[:, None]).astype(np.float32)
    whole = measure_loudness(music, SR)
    meter = LoudnessMeter(SR, 2)
    for start in range(0, len(music), 77777):
        meter.add(music[start:start + 77777])
    pieces = meter.result()
    assert pieces.integrated_lufs == pytest.approx(whole.integrated_lufs, abs=1e-9)
    assert pieces.range_lu == pytest.approx(whole.range_lu, abs=1e-9)
    assert np.allclose(pieces.momentary, whole.momentary)


def test_pieces_shorter_than_a_block_are_carried_over():
    from beatwatch.analysis.loudness import LoudnessMeter

    tone = np.stack([sine(0.1, 3.0)] * 2, axis=1)
    meter = LoudnessMeter(SR, 2)
    for start in range(0, len(tone), 1000):  # every piece shorter than one 100 ms block
        meter.add(tone[start:start + 1000])
    assert meter.result().integrated_lufs == pytest.approx(measure_loudness(tone, SR).integrated_lufs, abs=1e-9)
