"""The tuning estimate on tones of known pitch and on detuned renders, and the key of those renders: a band 40
cents off A=440 is still in its key, and a minor song full of minor sevenths is not its relative major."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bench.arrange import ArrangedSpec
from bench.arranged import render
from beatwatch.analysis.audio.spectrum import log_filterbank, magnitude_spectrogram, retuned
from beatwatch.analysis.harmony.tonality import chord_class
from beatwatch.analysis.harmony.tuning import deviation_histogram, spectral_peaks, tuning_cents, tuning_hz

SR = 44100


def chords_at(cents: float, seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    """A C major and an A minor triad, two seconds each in turn, every note with six decaying partials, the
    whole band `cents` away from A=440, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * 2.0)) / SR
    parts = []
    for i in range(int(seconds / 2)):
        notes = (48, 52, 55, 60) if i % 2 == 0 else (45, 52, 57, 60)
        chord = np.zeros_like(t)
        for note in notes:
            f0 = 440.0 * 2 ** ((note - 69) / 12 + cents / 1200)
            chord += sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.3)) / k ** 1.5 for k in range(1, 7))
        parts.append(chord * np.exp(-t / 1.5))
    signal = np.concatenate(parts)
    return (0.1 * signal / np.abs(signal).max() + 1e-3 * rng.standard_normal(len(signal))).astype(np.float32)


@pytest.mark.parametrize("cents", [-40.0, -17.0, 0.0, 23.0, 40.0])
def test_the_tuning_of_detuned_chords_is_found_within_two_cents(cents):
    assert tuning_cents(deviation_histogram(spectral_peaks(chords_at(cents), SR))) == pytest.approx(cents, abs=2.0)


def test_chunk_histograms_add_up_to_the_whole_and_silence_has_no_tuning():
    signal = chords_at(-31.0, seconds=12.0)
    halves = deviation_histogram(spectral_peaks(signal[: len(signal) // 2], SR)) + deviation_histogram(
        spectral_peaks(signal[len(signal) // 2:], SR))
    assert tuning_cents(halves) == pytest.approx(-31.0, abs=2.0)
    assert tuning_cents(deviation_histogram(spectral_peaks(np.zeros(SR * 3, dtype=np.float32), SR))) is None
    assert tuning_cents(deviation_histogram(spectral_peaks(np.zeros(100, dtype=np.float32), SR))) is None
    assert tuning_hz(0.0) == 440.0 and tuning_hz(-1200.0) == pytest.approx(220.0)


def test_a_retuned_filterbank_hears_a_sharp_chord_as_the_in_tune_one_hears_it_in_tune():
    bank = log_filterbank(8192, SR, 24, 65.0, 2100.0)
    sharp = retuned(bank, 8192, SR, 40.0)
    assert sharp.shape == bank.shape and np.allclose(sharp.sum(axis=0), 1.0, atol=1e-4)
    assert retuned(bank, 8192, SR, 0.0) is bank

    def bands(cents: float, filterbank: np.ndarray) -> np.ndarray:
        return magnitude_spectrogram(chords_at(cents, seconds=2.0), 8192, 5, SR)[3] @ filterbank

    in_tune = bands(0.0, bank)
    assert np.corrcoef(bands(40.0, sharp), in_tune)[0, 1] > 0.97
    assert np.corrcoef(bands(40.0, bank), in_tune)[0, 1] < 0.9


# C minor, every chord a seventh but the last: Cm7 Abmaj7 Cm7 Abmaj7 | Cm7 Abmaj7 Fm7 G7. Cm7's upper three
# notes are an Eb major triad, Abmaj7's a C minor one: read as triads, the song leans to Eb major.
MINOR_SEVENTHS = ArrangedSpec(name="cmin7", bpm=120.0, meter=4, tonic=0, mode="minor",
                              form=(("intro", 4), ("verse", 4)), progressions=(("intro", 0), ("verse", 0)),
                              humanize_ms=5.0, lead=False, seed=3)


@pytest.fixture(scope="module")
def detuned(analyzer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("detuned")
    return {cents: analyzer.analyze(render(replace(MINOR_SEVENTHS, name=f"cmin7{cents:+.0f}", detune_cents=cents),
                                           folder).audio)
            for cents in (-40.0, 40.0)}


@pytest.mark.parametrize("cents", [-40.0, 40.0])
def test_a_minor_song_of_minor_sevenths_40_cents_off_keeps_its_key_and_tells_its_tuning(detuned, cents):
    summary = detuned[cents]["summary"]
    assert summary["key"] == "C minor"
    assert [k["key"] for k in detuned[cents]["timeline"]["keys"]] == ["C minor"]
    assert summary["tuning_cents"] == pytest.approx(cents, abs=10.0)
    assert summary["tuning_hz"] == pytest.approx(tuning_hz(summary["tuning_cents"]), abs=0.05)


def test_both_detunings_hear_the_verse_chords_on_their_roots(detuned):
    # the verse, where the bass and drums come in: Cm7 Abmaj7 Fm7 G7 (the intro's soft pad is a weaker test)
    verse = [[chord_class(b["chord"] or "N") for b in detuned[cents]["timeline"]["bars"]][-4:] for cents in detuned]
    assert verse[0] == verse[1] == [chord_class(label) for label in ("C:min", "Ab:maj", "F:min", "G:maj")]
