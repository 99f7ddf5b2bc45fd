"""The blocked spectrograms must feed the chord and key networks exactly what madmom's processors would."""

from __future__ import annotations

import numpy as np
import pytest

SR = 44100


@pytest.fixture(scope="module")
def chord_signal() -> np.ndarray:
    """20 s of a C major triad (with a few overtones) turning into A minor, over noise, so every band is live."""
    t = np.arange(20 * SR) / SR
    signal = np.zeros_like(t)
    for freqs, span in (((261.63, 329.63, 392.0), t < 10), ((220.0, 261.63, 329.63), t >= 10)):
        for f in freqs:
            for harmonic in (1, 2, 3):
                signal += span * np.sin(2 * np.pi * f * harmonic * t) / harmonic
    signal += 0.3 * np.random.default_rng(0).standard_normal(len(t))
    return (0.5 * signal / np.abs(signal).max()).astype(np.float32)


def _madmom_chain(*processors):
    from madmom.audio.signal import Signal
    from madmom.processors import SequentialProcessor

    chain = SequentialProcessor(processors)
    return lambda signal: np.asarray(chain(Signal(signal, sample_rate=SR, num_channels=1)))


def test_chord_spectrogram_equals_madmoms(chord_signal):
    from madmom.features.chords import CNNChordFeatureProcessor

    from beatwatch.analysis.harmony.chords import ChordRecognizer

    reference = _madmom_chain(*CNNChordFeatureProcessor().processors[:4])(chord_signal)
    ours = ChordRecognizer().spectrogram(chord_signal, SR)
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < 1e-4


def test_chord_features_equal_madmoms(chord_signal, analyzer):
    from madmom.features.chords import CNNChordFeatureProcessor

    from beatwatch.analysis.harmony.chords import ChordRecognizer

    reference = _madmom_chain(CNNChordFeatureProcessor())(chord_signal)
    ours = analyzer.networks.chord_features([ChordRecognizer().spectrogram(chord_signal, SR)])[0]
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < 1e-4


def test_key_spectrogram_equals_madmoms(chord_signal):
    from madmom.audio.signal import FramedSignalProcessor
    from madmom.audio.spectrogram import LogarithmicFilteredSpectrogramProcessor
    from madmom.audio.stft import ShortTimeFourierTransformProcessor

    from beatwatch.analysis.harmony.key import KeyRecognizer

    reference = _madmom_chain(
        FramedSignalProcessor(frame_size=8192, fps=5), ShortTimeFourierTransformProcessor(),
        LogarithmicFilteredSpectrogramProcessor(num_bands=24, fmin=65, fmax=2100, unique_filters=True))(chord_signal)
    ours = KeyRecognizer().spectrogram(chord_signal, SR)
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < 1e-4


@pytest.mark.parametrize("size, fps, rate", [(8192, 10, SR), (2048, 100, 22050)])
def test_filtering_per_block_equals_filtering_madmoms_magnitude(monkeypatch, size, fps, rate):
    """Several blocks, a partial last one and a hop that is not a whole number of samples (22050 / 100)."""
    from madmom.audio.signal import FramedSignal, Signal
    from madmom.audio.spectrogram import Spectrogram

    from beatwatch.analysis.audio import spectrum

    monkeypatch.setattr(spectrum, "BLOCK_SAMPLES", 37 * size)
    signal = np.random.default_rng(1).standard_normal(7 * rate).astype(np.float32)
    filterbank = spectrum.log_filterbank(size, rate, 12, 30.0, 8000.0)
    reference = np.asarray(Spectrogram(FramedSignal(Signal(signal, sample_rate=rate), frame_size=size, fps=fps)))
    assert spectrum.magnitude_spectrogram(signal, size, fps, rate).shape == reference.shape
    blocked = spectrum.filtered_spectrogram(signal, size, fps, rate, filterbank)
    assert blocked.shape == (len(reference), filterbank.shape[1])
    assert np.allclose(blocked, reference @ filterbank, rtol=1e-4, atol=1e-4)
