"""Our sessions over madmom's network files give madmom's own outputs, batched or not."""

from __future__ import annotations

import numpy as np
import pytest
from madmom.ml.nn import NeuralNetwork, NeuralNetworkEnsemble
from madmom.ml.nn.activations import softmax
from madmom.features.chords import _cnncfp_avg, _cnncfp_pad, _cnncfp_superframes
from madmom.models import CHORDS_CNN_FEAT, DOWNBEATS_BLSTM, KEY_CNN


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


def test_key_cnn_equals_madmoms_for_each_slice_of_a_batch(analyzer):
    """Slices of one length run as a batch through the rebuilt graph (`conv_graph`), others on their own;
    each gets what madmom's network gives it alone, in the order asked."""
    rng = np.random.default_rng(4)
    slices = [rng.random((frames, 105), dtype=np.float32) for frames in (50, 80, 50, 50, 31)]
    network = NeuralNetworkEnsemble.load(KEY_CNN)
    ours = analyzer.networks.key(slices)
    for spec, result in zip(slices, ours):
        reference = softmax(np.asarray(network(spec)).reshape(1, -1))[0]
        assert result.shape == (24,) and abs(result.sum() - 1.0) < 1e-5
        assert np.abs(result - reference).max() < 1e-5
    assert len({tuple(np.round(result, 4)) for result in ours}) == len(slices)


def test_chord_features_equal_madmoms(analyzer):
    spec = np.random.default_rng(5).random((300, 113), dtype=np.float32)
    network = NeuralNetwork.load(CHORDS_CNN_FEAT[0])
    reference = _cnncfp_avg(_cnncfp_superframes(np.asarray(network(_cnncfp_pad(spec)))))
    (ours,) = analyzer.networks.chord_features([spec])
    assert ours.shape == reference.shape == (300, 128)
    assert np.abs(ours - reference).max() < 1e-4 * max(1.0, np.abs(reference).max())


def test_a_cnn_with_a_node_the_rebuild_does_not_know_is_refused():
    from onnx import TensorProto, helper

    from beatwatch.analysis.nets.conv_graph import nchw_graph

    graph = helper.make_graph([helper.make_node("Sigmoid", ["input"], ["out"], name="gate")], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 4])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 4])])
    with pytest.raises(ValueError, match="Sigmoid node \\(gate\\)"):
        nchw_graph(helper.make_model(graph))
