"""The chord CRF's posteriors, which every chord's confidence is read from, against the model's own definition.

madmom's CRF scores a label path as pi(y0') + A(y0', y0) + unary(0, y0) + A(y0, y1) + ... + tau(yn): a
virtual state before the first frame, its transitions, each frame's potentials c + x W, and a final
score. A frame's posterior is the summed weight of every path through that label, here enumerated outright
for a short sequence and computed in the log domain for a long one.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.special import logsumexp

from beatwatch.analysis.harmony.chords import ChordRecognizer, crf_posteriors

CRF = ChordRecognizer().crf


def _features(frames: int, scale: float, seed: int) -> np.ndarray:
    return np.abs(np.random.default_rng(seed).standard_normal((frames, CRF.W.shape[0]))).astype(np.float32) * scale


def test_posteriors_are_the_sum_over_every_path_through_each_label():
    features = _features(3, 1.0, seed=1)
    unary = np.asarray(CRF.c + features @ CRF.W, dtype=np.float64)
    k = len(CRF.pi)
    states = np.array(list(itertools.product(range(k), repeat=4)))  # (before, y0, y1, y2)
    scores = (CRF.pi[states[:, 0]] + CRF.A[states[:, 0], states[:, 1]] + unary[0, states[:, 1]]
              + CRF.A[states[:, 1], states[:, 2]] + unary[1, states[:, 2]]
              + CRF.A[states[:, 2], states[:, 3]] + unary[2, states[:, 3]] + CRF.tau[states[:, 3]])
    weights = np.exp(scores - logsumexp(scores))
    expected = np.array([np.bincount(states[:, frame + 1], weights=weights, minlength=k) for frame in range(3)])
    np.testing.assert_allclose(crf_posteriors(CRF, features), expected, atol=1e-9)


def _log_domain(features: np.ndarray) -> np.ndarray:
    unary = np.asarray(CRF.c + features @ CRF.W, dtype=np.float64)
    alpha = np.empty_like(unary)
    prev = np.asarray(CRF.pi, dtype=np.float64)
    for i in range(len(unary)):
        alpha[i] = prev = logsumexp(prev[:, None] + CRF.A, axis=0) + unary[i]
    beta = np.empty_like(unary)
    beta[-1] = CRF.tau
    for i in range(len(unary) - 2, -1, -1):
        beta[i] = logsumexp(CRF.A + (unary[i + 1] + beta[i + 1])[None, :], axis=1)
    log_post = alpha + beta
    return np.exp(log_post - logsumexp(log_post, axis=1, keepdims=True))


def test_a_long_file_with_sharp_potentials_keeps_exact_posteriors():
    """Ten minutes of frames whose potentials differ by hundreds: the normalised recursion neither
    underflows nor drifts."""
    features = _features(6000, 40.0, seed=2)
    posteriors = crf_posteriors(CRF, features)
    np.testing.assert_allclose(posteriors, _log_domain(features), atol=1e-9)
    assert np.ptp(CRF.c + features @ CRF.W, axis=1).max() > 100
