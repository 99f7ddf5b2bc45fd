"""Beats the bar tracker counts over a held chord are dropped; quiet stretches of a steady pulse keep theirs."""

from __future__ import annotations

import numpy as np
import pytest

from beatwatch.analysis.rhythm.beats import Activations, Beats, BeatTracker, beat_confidence
from beatwatch.analysis.rhythm.holds import SOUNDING, without_holds

FPS = 100
PERIOD = 0.7
HOLD = (9.8, 15.3)  # the chord struck at 9.8 s is held until the pulse resumes at 15.3 s


def _bump(values: np.ndarray, time: float, column: int, height: float) -> None:
    frame = int(round(time * FPS))
    values[frame - 2:frame + 3, column] = np.maximum(values[frame - 2:frame + 3, column],
                                                    height * np.array([0.3, 0.7, 1.0, 0.7, 0.3]))


def _music(*, beats: np.ndarray, notes: tuple[float, ...] = (), length: float = 26.0) -> Activations:
    """A beat activation with every fourth beat a downbeat, plus notes heard at their own times."""
    values = np.full((int(length * FPS), 2), 0.005)
    for i, t in enumerate(beats):
        _bump(values, t, 1 if i % 4 == 0 else 0, 0.6)
    for t in notes:
        _bump(values, t, 0, 0.35)
    return Activations(values=values)


def _pulse(start: float, stop: float) -> np.ndarray:
    return np.arange(start, stop, PERIOD)


@pytest.fixture(scope="module")
def tracker() -> BeatTracker:
    return BeatTracker()


def _inside_hold(times: np.ndarray) -> np.ndarray:
    return times[(times > HOLD[0] + 0.1) & (times < HOLD[1] - 0.1)]


def test_the_beats_counted_over_a_held_chord_with_notes_rolled_out_of_time_are_dropped(tracker):
    pulse = np.concatenate([_pulse(0.5, HOLD[0] + 0.01), _pulse(HOLD[1], 26.0)])
    activations = _music(beats=pulse, notes=(11.1, 12.45, 13.75))
    tracked = tracker(activations)
    assert len(_inside_hold(tracked.times)) >= 5  # the tracker keeps counting over the hold
    kept = without_holds(tracked, activations)
    assert len(_inside_hold(kept.times)) == 0
    # every beat of the pulse before and after the hold is still there
    assert np.abs(kept.times[:, None] - pulse[None, :]).min(axis=0).max() <= 0.03


def test_a_silent_stretch_of_a_steady_pulse_keeps_its_beats(tracker):
    """A breakdown where the network hears nothing: nothing sounds off the beats, so nothing says time stopped."""
    pulse = _pulse(0.5, 26.0)
    activations = _music(beats=pulse[(pulse < HOLD[0] + 0.01) | (pulse > HOLD[1] - 0.4)])
    tracked = tracker(activations)
    assert len(_inside_hold(tracked.times)) >= 5
    np.testing.assert_array_equal(without_holds(tracked, activations).times, tracked.times)


def _counted_on(pulse: np.ndarray, activations: Activations) -> Beats:
    """Beats on every beat of `pulse`, as the tracker (or onto_the_bass) keeps them, with their confidence."""
    confidence = beat_confidence(activations.values.sum(axis=1), pulse, FPS)
    return Beats(times=pulse, positions=np.arange(len(pulse)) % 4 + 1, confidence=confidence)


def test_stabs_half_way_between_quiet_beats_are_a_pulse_and_keep_them():
    """Chords on every "and" over beats where only a soft bass sounds (the beats onto_the_bass moved there):
    the notes heard off the beats sound half way between them in most intervals, the "and" of the pulse."""
    pulse = _pulse(0.5, 26.0)
    quiet = (pulse > HOLD[0] + 0.1) & (pulse < HOLD[1] - 0.4)
    stabs = _music(beats=pulse[~quiet], notes=tuple(pulse[quiet] + PERIOD / 2))
    beats = _counted_on(pulse, stabs)
    assert (beats.confidence[quiet] < SOUNDING).all()
    np.testing.assert_array_equal(without_holds(beats, stabs).times, pulse)
    out_of_time = _music(beats=pulse[~quiet], notes=tuple(pulse[quiet][::2] + PERIOD / 3))
    np.testing.assert_array_equal(without_holds(beats, out_of_time).times, pulse[~quiet])


def test_a_quiet_intro_with_notes_out_of_time_keeps_its_beats():
    """Before the first passage of sounding beats there is no pulse to have stopped."""
    pulse = _pulse(0.5, 26.0)
    intro = pulse < 6.0
    activations = _music(beats=pulse[~intro], notes=tuple(pulse[intro][::2] + PERIOD / 3))
    beats = _counted_on(pulse, activations)
    assert (beats.confidence[intro] < SOUNDING).all()
    np.testing.assert_array_equal(without_holds(beats, activations).times, pulse)
