"""The click track, checked by listening to it with librosa's onset detector and by its samples."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from beatwatch.analysis.audio.decode import Audio, AudioInfo, decode, probe
from beatwatch.render.click import BLOCK_S, CLICK_S, PEAK_LIMIT, render_click
from tests.helpers import SR, write_wav

ONSET_TOLERANCE_S = 0.010
# Short frames and a fine hop: librosa's defaults (2048 / 512) smear a click over ~12 ms.
ONSET_N_FFT, ONSET_HOP = 512, 64


def stereo(signal: np.ndarray) -> Audio:
    info = AudioInfo(path="tone.wav", size=1, format="wav", duration=len(signal) / SR, sample_rate=SR, channels=2)
    return Audio(info=info, samples=np.stack([signal, 0.8 * signal], axis=1).astype(np.float32))


def low_sine(seconds: float, amplitude: float = 0.05) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * 110.0 * t)).astype(np.float32)


def uneven_beats(count: int, start: float = 0.4, period: float = 0.5) -> list[dict]:
    """Beats with a little jitter, so a click that merely lands on a regular grid would not pass."""
    jitter = np.random.default_rng(3).uniform(-0.04, 0.04, count)
    return [{"time": round(start + i * period + float(jitter[i]), 3), "bar": i // 4 + 1, "position": i % 4 + 1}
            for i in range(count)]


def onsets(path: Path) -> np.ndarray:
    mix, sr = sf.read(str(path), dtype="float32", always_2d=True)
    envelope = librosa.onset.onset_strength(y=mix.mean(axis=1), sr=sr, n_fft=ONSET_N_FFT, hop_length=ONSET_HOP,
                                            n_mels=64)
    return librosa.onset.onset_detect(onset_envelope=envelope, sr=sr, hop_length=ONSET_HOP,
                                      backtrack=True, units="time")


def click_window(mix: np.ndarray, time_s: float) -> np.ndarray:
    start = int(round(time_s * SR))
    return mix[start:start + int(CLICK_S * SR)].mean(axis=1)


def dominant_hz(window: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window)), n=8192))
    freqs = np.fft.rfftfreq(8192, 1 / SR)
    spectrum[freqs < 300] = 0
    return float(freqs[np.argmax(spectrum)])


def test_every_beat_is_heard_within_10_ms_and_nothing_else(tmp_path):
    beats = uneven_beats(14)
    out = render_click(stereo(low_sine(8.0)), beats, tmp_path / "clicks.wav")
    found = onsets(out)
    errors = [float(np.min(np.abs(found - b["time"]))) for b in beats]
    assert max(errors) <= ONSET_TOLERANCE_S
    assert len(found) == len(beats)


def test_downbeat_clicks_are_louder_and_higher(tmp_path):
    beats = uneven_beats(16)
    out = render_click(stereo(low_sine(9.0)), beats, tmp_path / "clicks.wav")
    mix, _sr = sf.read(str(out), dtype="float32", always_2d=True)
    peak = {b["time"]: float(np.max(np.abs(click_window(mix, b["time"])))) for b in beats}
    pitch = {b["time"]: dominant_hz(click_window(mix, b["time"])) for b in beats}
    down = [b["time"] for b in beats if b["position"] == 1]
    other = [b["time"] for b in beats if b["position"] != 1]
    assert min(peak[t] for t in down) > 1.5 * max(peak[t] for t in other)
    assert min(pitch[t] for t in down) > 1.3 * max(pitch[t] for t in other)


def test_output_keeps_layout_rate_and_length_and_is_16_bit(tmp_path):
    audio = stereo(low_sine(3.0))
    out = render_click(audio, uneven_beats(4), tmp_path / "clicks.wav")
    info = sf.info(str(out))
    assert (info.channels, info.samplerate, info.frames, info.subtype, info.format) == \
        (2, SR, len(audio.samples), "PCM_16", "WAV")


def test_a_decoded_mono_file_stays_mono_and_keeps_its_music(media, tmp_path):
    path = write_wav(media / "click_mono.wav", low_sine(4.0, amplitude=0.2))
    audio = decode(probe(path))
    assert audio.samples.shape[1] == 1
    out = render_click(audio, [], tmp_path / "mono.wav")
    mix, sr = sf.read(str(out), dtype="float32", always_2d=True)
    assert mix.shape == audio.samples.shape and sr == SR
    assert np.max(np.abs(mix - audio.samples)) < 2.0 / 32768


def test_a_loud_mix_is_scaled_below_full_scale_not_clipped(tmp_path):
    music = low_sine(4.0, amplitude=0.98)
    out = render_click(stereo(music), uneven_beats(6), tmp_path / "loud.wav")
    mix, _sr = sf.read(str(out), dtype="float32", always_2d=True)
    assert np.max(np.abs(mix)) <= PEAK_LIMIT + 1.0 / 32768
    assert np.max(np.abs(mix)) > 0.95
    # Between clicks the music is still there, only quieter by one gain for the whole file.
    quiet = slice(int(0.05 * SR), int(0.3 * SR))
    ratio = np.dot(mix[quiet, 0], music[quiet]) / np.dot(music[quiet], music[quiet])
    assert 0.5 < ratio < 0.99
    assert np.allclose(mix[quiet, 0], ratio * music[quiet], atol=2e-4)


def test_a_click_across_a_block_border_sounds_like_any_other(tmp_path):
    border = BLOCK_S
    beats = [{"time": 1.0, "position": 2}, {"time": round(border - 0.01, 3), "position": 2}]
    out = render_click(stereo(np.zeros(int((border + 1.0) * SR), dtype=np.float32)), beats, tmp_path / "border.wav")
    mix, _sr = sf.read(str(out), dtype="float32", always_2d=True)
    np.testing.assert_allclose(click_window(mix, beats[1]["time"]), click_window(mix, 1.0), atol=1e-4)


def test_a_beat_at_the_very_end_is_cut_short_and_other_suffixes_are_refused(tmp_path):
    audio = stereo(low_sine(2.0))
    out = render_click(audio, [{"time": 1.995, "position": 1}, {"time": 5.0, "position": 2}], tmp_path / "end.wav")
    assert sf.info(str(out)).frames == len(audio.samples)
    with pytest.raises(ValueError, match=r"\.mp3"):
        render_click(audio, [], tmp_path / "clicks.mp3")
