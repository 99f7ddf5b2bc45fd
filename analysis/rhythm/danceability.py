"""Danceability from the rhythm this file already has: a clear, steady pulse near dance tempo.

Essentia's DFA danceability was tried first and ranked white noise and a
sine drone above a steady kick pattern on synthetic material, so the score
is built from evidence that means "you can dance to this": how strongly the
beat network hears each beat, how steady the tempo is, how hard the beats
hit, and how close the tempo is to the 120 BPM that dancers prefer.
"""

from __future__ import annotations

import numpy as np

from .beats import Beats
from .tempo import Tempo
from .transients import BeatTransients

PREFERRED_BPM = 120.0
# Octaves from PREFERRED_BPM at which the tempo factor falls to exp(-1/2).
TEMPO_SPREAD_OCTAVES = 0.6


def danceability(beats: Beats, tempo: Tempo, transients: BeatTransients) -> float:
    """0..1: pulse salience × steadiness × attack strength × tempo preference."""
    if tempo.bpm is None or len(beats.times) < 4:
        return 0.0
    salience = float(np.mean(beats.confidence))
    steady = float(np.mean(np.abs(tempo.curve_bpm / tempo.bpm - 1.0) <= 0.04))
    attack = float(np.mean(transients.strengths))
    preference = float(np.exp(-0.5 * (np.log2(tempo.bpm / PREFERRED_BPM) / TEMPO_SPREAD_OCTAVES) ** 2))
    return float(np.clip(np.sqrt(salience * steady) * (0.5 + 0.5 * attack) * preference, 0.0, 1.0))
