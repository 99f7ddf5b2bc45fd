"""Which of two phases is the beat when chords stab every off-beat over a sparse bass: the bass's.

Chords on the "and" of every beat over a bass on beats 1 and 3 (reggae,
ska, a pianist comping off the beat) give the tracker two evenly spaced
candidates half a beat apart: the stabs, loud and on every beat, and the
beats themselves, where only the bass sounds, and on 2 and 4 nothing. The
network fires on the stabs and the bar tracker follows it (a 96 BPM song
tracked on every "and", beat F-measure 0; madmom's own tracker does the
same). Periodicity cannot tell the two apart, and neither can the amount of
onset energy at low frequencies: a piano stab's hammer and an organ's
sub-octave put as much rise below 200 Hz as the bass does, on songs tracked
right and wrong alike. What does tell them apart is where the new sound sits
as a whole: the beat is where the lowest instrument enters. Weighted by
energy, the onsets half way between beats tracked on the stabs sit more than
an octave below those on them (1.35-1.56 octaves on seven such songs in
piano, e-piano and guitar); everywhere else they sit about as high or higher
(a hi-hat or picking between the beats: -0.5 to +1.6 octaves over the
rendered suites and the real clips). So the beats move by half a beat when the onsets between them sit
clearly lower, and sound with enough energy to be a beat.
"""

from __future__ import annotations

import numpy as np

from .bar_phase import bar_positions, downbeat_probability
from .beats import Activations, Beats

# How much lower (octaves) the onsets half way between tracked beats must sit than those on them.
LOWER_BY_OCTAVES = 1.0
# And how much onset energy they must carry, relative to the tracked beats' (songs stabbed on every "and":
# 0.22-0.52; a hi-hat between the beats of a kit: 0.11): a bass note now and then between loud beats is a
# syncopation, not the beat.
MIDPOINT_ENERGY = 0.15
RADIUS_FRAMES = 3
MIN_BEATS = 8


def _around(register: np.ndarray, times: np.ndarray, fps: float) -> tuple[float, float]:
    """(total rise, mean log2 frequency of that rise) within RADIUS_FRAMES of the given times."""
    frames = np.round(times * fps).astype(int)
    window = np.clip(frames[:, None] + np.arange(-RADIUS_FRAMES, RADIUS_FRAMES + 1)[None, :], 0, len(register) - 1)
    rise, moment = register[window, 0].sum(), register[window, 1].sum()
    return float(rise), float(moment / max(rise, 1e-12))


def bass_between_beats(register: np.ndarray, times: np.ndarray, fps: float) -> bool:
    """Whether the sound half way between the tracked beats enters clearly lower than the sound on them, with
    energy enough to be the beat: the tracked beats are off-beat stabs and the bass marks the beat."""
    if len(times) < MIN_BEATS or len(register) == 0:
        return False
    on_rise, on_height = _around(register, times[:-1], fps)
    mid_rise, mid_height = _around(register, (times[:-1] + times[1:]) / 2, fps)
    return mid_rise >= MIDPOINT_ENERGY * on_rise and on_height - mid_height >= LOWER_BY_OCTAVES


def onto_the_bass(beats: Beats, register: np.ndarray, activations: Activations, duration: float) -> Beats:
    """`beats`, or each moved half a beat earlier when bass_between_beats says they are the off-beats; the
    bar positions of moved beats are decoded again from the network's downbeat evidence at them, and each keeps
    the confidence of the pulse it was moved within (the network barely fires on a beat only the bass plays)."""
    times = beats.times
    if not bass_between_beats(register, times, activations.fps):
        return beats
    moved = (times[:-1] + times[1:]) / 2
    before, after = times[0] - (times[1] - times[0]) / 2, times[-1] + (times[-1] - times[-2]) / 2
    moved = np.concatenate([[before] if before >= 0 else [], moved, [after] if after < duration else []])
    meter = beats.meter or 4
    positions = bar_positions(downbeat_probability(activations.values, moved, activations.fps), meter,
                              start=int(beats.positions[0]) - 1)
    return Beats(times=moved, positions=positions, confidence=np.interp(moved, times, beats.confidence))
