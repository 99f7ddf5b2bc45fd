"""EBU R128 loudness, per-span loudness and the energy curve against signals of known level.

The EBU's conformance signals are generated here from their definitions in EBU Tech 3341 (table 1:
stereo 1 kHz sines, levels in dBFS per channel) and Tech 3342 (table 1), at 48 kHz as published and at
44.1 kHz, the rate the pipeline measures at. Tech 3341 case 6 is 5.0 surround (beatwatch reads one
or two channels) and cases 7 and 8 are recorded programme that no definition generates: in their
place a programme-like signal is held to ffmpeg's ebur128 meter.
"""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from beatwatch.analysis.audio.decode import decode, probe
from beatwatch.analysis.loudness import energy_curve, k_weighting, measure_loudness, span_loudness
from tests.helpers import SR, write_wav

# Tech 3341 table 1: (dBFS, seconds) segments and the integrated loudness a meter must read within 0.1 LU.
TECH_3341 = {
    1: ([(-23.0, 20.0)], -23.0),
    2: ([(-33.0, 20.0)], -33.0),
    3: ([(-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0)], -23.0),
    4: ([(-72.0, 10.0), (-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0), (-72.0, 10.0)], -23.0),
    5: ([(-26.0, 20.0), (-20.0, 20.1), (-26.0, 20.0)], -23.0),
}
# Tech 3342 table 1: segments and the loudness range a meter must read within 1 LU.
TECH_3342 = {
    1: ([(-20.0, 20.0), (-30.0, 20.0)], 10.0),
    2: ([(-20.0, 20.0), (-15.0, 20.0)], 5.0),
    3: ([(-40.0, 20.0), (-20.0, 20.0)], 20.0),
    4: ([(-50.0, 20.0), (-35.0, 20.0), (-20.0, 20.0), (-35.0, 20.0), (-50.0, 20.0)], 15.0),
}
# BS.1770-4 table 1 and 2: the K-weighting biquads at 48 kHz (b0, b1, b2, a0, a1, a2).
BS1770_48K = np.array([
    [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241, 0.73248077421585],
    [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621],
])


def stereo_tones(segments: list[tuple[float, float]], sr: int, freq: float = 1000.0) -> np.ndarray:
    """Consecutive stereo sines, each `dBFS` peak level in both channels, phase running on across segments."""
    levels = np.concatenate([np.full(int(round(seconds * sr)), 10 ** (dbfs / 20)) for dbfs, seconds in segments])
    tone = levels * np.sin(2 * np.pi * freq * np.arange(len(levels)) / sr)
    return np.stack([tone, tone], axis=1).astype(np.float32)


def sine(amplitude: float, seconds: float = 10.0, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_stereo_sine_at_minus_20_dbfs_is_minus_20_lufs():
    tone = sine(0.1)
    loud = measure_loudness(np.stack([tone, tone], axis=1), SR)
    assert loud.integrated_lufs == pytest.approx(-20.0, abs=0.1)
    assert loud.range_lu == pytest.approx(0.0, abs=0.5)


def test_mono_counts_as_one_channel():
    loud = measure_loudness(sine(0.1)[:, None], SR)
    assert loud.integrated_lufs == pytest.approx(-23.0, abs=0.1)


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


def test_k_weighting_at_48_khz_is_the_published_biquads():
    assert np.allclose(k_weighting(48000), BS1770_48K, atol=1e-12)


@pytest.mark.parametrize("sr", [48000, SR])
@pytest.mark.parametrize("case", sorted(TECH_3341))
def test_tech_3341_integrated_loudness(case, sr):
    segments, expected = TECH_3341[case]
    assert measure_loudness(stereo_tones(segments, sr), sr).integrated_lufs == pytest.approx(expected, abs=0.1)


@pytest.mark.parametrize("sr", [48000, SR])
@pytest.mark.parametrize("case", sorted(TECH_3342))
def test_tech_3342_loudness_range(case, sr):
    segments, expected = TECH_3342[case]
    assert measure_loudness(stereo_tones(segments, sr), sr).range_lu == pytest.approx(expected, abs=1.0)


def test_a_48_khz_file_decoded_as_the_pipeline_decodes_it_reads_tech_3341_case_1(tmp_path):
    path = write_wav(tmp_path / "case1.wav", stereo_tones(TECH_3341[1][0], 48000), 48000)
    audio = decode(probe(path))
    assert audio.sample_rate == SR
    assert measure_loudness(audio.samples, audio.sample_rate).integrated_lufs == pytest.approx(-23.0, abs=0.1)


def _ffmpeg_ebur128(path) -> tuple[float, float]:
    """(integrated LUFS, LRA) as ffmpeg's ebur128 filter reads the whole file (its last frame's metadata)."""
    log = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-af",
                          "ebur128=metadata=1,ametadata=mode=print:file=-", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stdout
    values = dict(re.findall(r"^lavfi\.r128\.(I|LRA)=(\S+)$", log, flags=re.MULTILINE)[-2:])
    return float(values["I"]), float(values["LRA"])


def test_programme_like_signal_agrees_with_ffmpeg_ebur128(tmp_path):
    """In place of Tech 3341 case 7: noise shaped like programme (level changes every half second, a bass line that
    comes and goes, different channels), band-limited to 20 kHz like recorded and encoded music, at 48 kHz."""
    rng = np.random.default_rng(7)
    sr, seconds = 48000, 40
    t = np.arange(sr * seconds) / sr
    envelope = np.repeat(10 ** (rng.uniform(-30, -8, seconds * 2) / 20), sr // 2)
    bass = 0.3 * np.sin(2 * np.pi * 55 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)
    noise = sosfilt(butter(8, 20000, fs=sr, output="sos"), rng.standard_normal((len(t), 2)), axis=0)
    programme = envelope[:, None] * noise * [0.3, 0.2] + bass[:, None]
    path = write_wav(tmp_path / "programme.wav", np.clip(programme, -1, 1), sr)
    reference_i, reference_lra = _ffmpeg_ebur128(path)
    audio = decode(probe(path))
    ours = measure_loudness(audio.samples, audio.sample_rate)
    # Two conformant meters on the same music agree to thousandths (20 rendered songs: within 0.006 LU); the
    # textbook K-weighting read 0.06 LU under it here and 0.09 LU under it on average on those songs.
    assert ours.integrated_lufs == pytest.approx(reference_i, abs=0.03)
    assert ours.range_lu == pytest.approx(reference_lra, abs=0.5)
