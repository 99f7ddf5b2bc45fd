"""Our sessions over madmom's network files give madmom's own outputs, batched or not."""

from __future__ import annotations

import numpy as np
from madmom.ml.nn import NeuralNetwork, NeuralNetworkEnsemble
from madmom.ml.nn.activations import softmax
from madmom.models import DOWNBEATS_BLSTM, KEY_CNN


def test_one_batched_ensemble_call_equals_madmoms_networks_run_one_file_at_a_time(analyzer):
    rng = np.random.default_rng(3)
    long, short = rng.random((900, 314), dtype=np.float32), rng.random((350, 314), dtype=np.float32)
    madmom = NeuralNetworkEnsemble([NeuralNetwork.load(path) for path in DOWNBEATS_BLSTM])
    batched = analyzer.networks.downbeats([long, short])
    for ours, features in zip(batched, (long, short)):
        reference = np.asarray(madmom(features))[:, 1:]
        assert ours.shape == reference.shape
        assert np.abs(ours - reference).max() < 1e-5
    # Padding the short one to the long one's length must not leak into its backward pass.
    alone = analyzer.networks.downbeats([short])[0]
    assert np.abs(alone - batched[1]).max() < 1e-5


def test_key_cnn_equals_madmoms(analyzer):
    spec = np.random.default_rng(4).random((80, 105), dtype=np.float32)
    reference = softmax(np.asarray(NeuralNetworkEnsemble.load(KEY_CNN)(spec)).reshape(1, -1))[0]
    (ours,) = analyzer.networks.key([spec])
    assert ours.shape == (24,) and abs(ours.sum() - 1.0) < 1e-5
    assert np.abs(ours - reference).max() < 1e-5
