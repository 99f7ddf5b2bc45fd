"""ML tags with the real musicnn weights: build offline, then check the Tagger against TensorFlow itself.

The `tensorflow` package never loads in the test process (Essentia's bundled
runtime lives here); the builder and the reference runs happen in child
processes, the same split as in production.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from beatwatch.analysis.audio.decode import resample
from beatwatch.analysis.nets.models_build import build_musicnn, is_fresh
from beatwatch.analysis.nets.tags import PATCH_FRAMES, Tagger
from beatwatch.analysis.nets.zoo import TAG_SAMPLE_RATE, list_models, write_metadata
from tests.helpers import SR, click_track

# Scores are rounded to 4 decimals and TF 2.21 sums in a different order than Essentia's TF 2.5.
TOLERANCE = 1e-3

# Runs a frozen graph with the `tensorflow` package: argv = graph, inputs .npy, output .npz, input node, outputs...
RUN_GRAPH = """
import sys, numpy as np, tensorflow as tf
graph_path, inputs_path, out_path, input_name, *outputs = sys.argv[1:]
graph_def = tf.compat.v1.GraphDef()
graph_def.ParseFromString(open(graph_path, "rb").read())
graph = tf.Graph()
with graph.as_default():
    tf.compat.v1.import_graph_def(graph_def, name="")
with tf.compat.v1.Session(graph=graph) as session:
    values = session.run([name + ":0" for name in outputs], {input_name + ":0": np.load(inputs_path)})
np.savez(out_path, *values)
"""

# Writes frozen placeholder -> mean over all but the batch and last axes -> dense -> sigmoid graphs.
# argv = (graph path, weights .npz with w and b, input shape without batch as a comma list) per graph.
TINY_GRAPHS = """
import sys, numpy as np, tensorflow as tf
args = sys.argv[1:]
for graph_path, weights_path, shape in zip(args[::3], args[1::3], args[2::3]):
    weights = np.load(weights_path)
    shape = [int(size) for size in shape.split(",")]
    graph = tf.Graph()
    with graph.as_default(), tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, *shape])
        pooled = tf.reduce_mean(x, axis=list(range(1, len(shape)))) if len(shape) > 1 else x
        tf.sigmoid(tf.matmul(pooled, tf.constant(weights["w"])) + tf.constant(weights["b"]))
    open(graph_path, "wb").write(graph.as_graph_def().SerializeToString())
"""


def _tensorflow(script: str, *args: object) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def _run_graph(graph: Path, inputs: np.ndarray, input_name: str, *outputs: str) -> list[np.ndarray]:
    inputs_path, out_path = graph.with_suffix(".in.npy"), graph.with_suffix(".out.npz")
    np.save(inputs_path, inputs.astype(np.float32))
    _tensorflow(RUN_GRAPH, graph, inputs_path, out_path, input_name, *outputs)
    with np.load(out_path) as values:
        return [values[f"arr_{i}"] for i in range(len(outputs))]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _by_label(tags: list[dict], model: str) -> dict[str, float]:
    return {tag["label"]: tag["score"] for tag in tags if tag["model"] == model}


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    """The MSD graph frozen from the musicnn wheel's checkpoint, offline, once per session.

    Asked for by a relative path, as `make install` does (`--out models`): it lands under the caller's folder."""
    out = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(out.parent)
        graphs = build_musicnn(Path(out.name), ("MSD_musicnn",))
    assert graphs == [Path(out.name) / "msd-musicnn.pb"]
    assert (out / "msd-musicnn.pb").is_file()
    return out


@pytest.fixture(scope="session")
def clip() -> np.ndarray:
    """10 s of clicks over a pad, taken to 16 kHz the way the pipeline does."""
    signal, _ = click_track(120, seconds=10.0)
    return resample(signal, SR, TAG_SAMPLE_RATE)


@pytest.mark.slow
def test_build_writes_zoo_pair_and_skips_when_fresh(built):
    info, = list_models(built)
    assert (info.name, info.input, info.output, info.sample_rate) == ("msd-musicnn", "model/Placeholder",
                                                                      "model/Sigmoid", 16000)
    assert len(info.classes) == 50 and info.classes[:2] == ("rock", "pop")
    assert info.embedding_output == "model/dense/BiasAdd"
    assert is_fresh(built, "MSD_musicnn")
    before = (built / "msd-musicnn.pb").stat().st_mtime_ns
    build_musicnn(built, ("MSD_musicnn",))
    assert (built / "msd-musicnn.pb").stat().st_mtime_ns == before


@pytest.mark.slow
def test_tagger_matches_frozen_graph_run_by_tensorflow(built, clip, tmp_path):
    tagger = Tagger(built)
    tags = tagger(clip)
    patches = tagger.patches(clip)
    assert patches.shape == (3, PATCH_FRAMES, 96)
    probabilities, = _run_graph(built / "msd-musicnn.pb", patches, "model/Placeholder", "model/Sigmoid")
    expected = dict(zip(list_models(built)[0].classes, probabilities.mean(axis=0), strict=True))
    scores = _by_label(tags, "msd-musicnn")
    assert scores.keys() == expected.keys()
    assert max(abs(scores[label] - expected[label]) for label in expected) < TOLERANCE
    assert [tag["score"] for tag in tags] == sorted((tag["score"] for tag in tags), reverse=True)
    assert "tensorflow" not in sys.modules


@pytest.mark.slow
def test_mel_patches_are_what_essentias_musicnn_predictor_feeds(built, clip):
    import essentia.standard as es

    predictor = es.TensorflowPredictMusiCNN(graphFilename=str(built / "msd-musicnn.pb"), patchHopSize=PATCH_FRAMES)
    expected = dict(zip(list_models(built)[0].classes, predictor(clip).mean(axis=0), strict=True))
    scores = _by_label(Tagger(built)(clip), "msd-musicnn")
    assert max(abs(scores[label] - expected[label]) for label in expected) < TOLERANCE


@pytest.mark.slow
def test_zoo_models_dropped_in_are_picked_up(built, clip, tmp_path):
    """A MusiCNN-input classifier and a classification head on msd-musicnn embeddings, as zoo pairs."""
    models = tmp_path / "models"
    models.mkdir()
    for suffix in (".pb", ".json"):
        shutil.copy(built / f"msd-musicnn{suffix}", models)
    rng = np.random.default_rng(7)
    tiny = {"w": rng.normal(0, 0.5, (96, 3)).astype(np.float32), "b": np.array([-1.0, 0.0, 1.0], np.float32)}
    head = {"w": rng.normal(0, 0.1, (200, 2)).astype(np.float32), "b": np.array([0.5, -0.5], np.float32)}
    graphs: list[object] = []
    for name, weights, shape in (("tiny", tiny, "187,96"), ("mood-msd-musicnn-1", head, "200")):
        np.savez(tmp_path / f"{name}.npz", **weights)
        graphs += [models / f"{name}.pb", tmp_path / f"{name}.npz", shape]
    _tensorflow(TINY_GRAPHS, *graphs)
    write_metadata(models / "tiny.json", name="tiny", classes=["low", "mid", "high"], input="model/Placeholder",
                   output="model/Sigmoid", embeddings=None, input_shape=[187, 96])
    head_json = {"classes": ["happy", "sad"],
                 "schema": {"inputs": [{"name": "model/Placeholder"}],
                            "outputs": [{"name": "model/Sigmoid", "output_purpose": "predictions"}]},
                 "inference": {"sample_rate": 16000, "algorithm": "TensorflowPredict2D",
                               "embedding_model": {"algorithm": "TensorflowPredictMusiCNN",
                                                   "model_name": "msd-musicnn-1"}}}
    (models / "mood-msd-musicnn-1.json").write_text(json.dumps(head_json))

    tagger = Tagger(models)
    assert tagger.models == ["mood-msd-musicnn-1", "msd-musicnn", "tiny"], tagger.skipped
    tags = tagger(clip)
    patches = tagger.patches(clip)
    embeddings, = _run_graph(models / "msd-musicnn.pb", patches, "model/Placeholder", "model/dense/BiasAdd")
    expected_tiny = _sigmoid(patches.mean(axis=1) @ tiny["w"] + tiny["b"]).mean(axis=0)
    expected_head = _sigmoid(embeddings @ head["w"] + head["b"]).mean(axis=0)
    assert np.allclose([_by_label(tags, "tiny")[c] for c in ("low", "mid", "high")], expected_tiny, atol=TOLERANCE)
    assert np.allclose([_by_label(tags, "mood-msd-musicnn-1")[c] for c in ("happy", "sad")], expected_head,
                       atol=TOLERANCE)
    assert tagger.describe().startswith("msd-musicnn, tiny, mood-msd-musicnn-1 on msd-musicnn embeddings (")


def test_empty_or_missing_models_folder_gives_no_tags(tmp_path, clip):
    for folder in (tmp_path, tmp_path / "absent"):
        tagger = Tagger(folder)
        assert tagger.models == [] and tagger(clip) == []
        assert tagger.describe() == f"not configured: no usable models in {folder}"


@pytest.mark.slow
def test_broken_model_files_are_skipped_with_the_reason(built, tmp_path, clip):
    for suffix in (".pb", ".json"):
        shutil.copy(built / f"msd-musicnn{suffix}", tmp_path)
    (tmp_path / "broken.json").write_text('{"classes": []}')
    (tmp_path / "broken.pb").write_bytes(b"")
    (tmp_path / "garbage.json").write_text(json.dumps({"classes": ["a"], "schema": {
        "inputs": [{"name": "model/Placeholder"}], "outputs": [{"name": "model/Sigmoid"}]}}))
    (tmp_path / "garbage.pb").write_bytes(b"not a graph")
    shutil.copy(built / "msd-musicnn.pb", tmp_path / "mismatch.pb")
    write_metadata(tmp_path / "mismatch.json", name="mismatch", classes=["a", "b"], input="model/Placeholder",
                   output="model/Sigmoid", embeddings=None, input_shape=[187, 96])
    tagger = Tagger(tmp_path)
    assert tagger.models == ["msd-musicnn"]
    assert set(tagger.skipped) == {"broken", "garbage", "mismatch"}
    assert "'classes' must be a non-empty list" in tagger.skipped["broken"]
    assert "gives 50 scores but mismatch.json lists 2 classes" in tagger.skipped["mismatch"]
    assert "mismatch skipped" in tagger.describe()
    assert len(tagger(clip)) == 50


@pytest.mark.slow
def test_short_and_empty_signals(built):
    tagger = Tagger(built)
    assert tagger(np.zeros(0, np.float32)) == []
    short = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    assert tagger.patches(short).shape == (1, PATCH_FRAMES, 96)
    assert len(tagger(short)) == 50


@pytest.mark.slow
def test_long_tracks_are_sampled_evenly(built):
    tagger = Tagger(built, max_patches=4)
    minute = np.random.default_rng(0).normal(0, 0.1, 60 * 16000).astype(np.float32)
    assert tagger.patches(minute).shape == (4, PATCH_FRAMES, 96)


@pytest.mark.slow
def test_tagging_survives_onednn_switched_on_in_the_environment(built):
    """Essentia's TensorFlow dies with SIGFPE under TF_ENABLE_ONEDNN_OPTS=1; the tagger must switch it off."""
    script = ("import sys, numpy as np; from pathlib import Path; from beatwatch.analysis.nets.tags import Tagger; "
              "print(len(Tagger(Path(sys.argv[1]))(np.ones(16000, np.float32))))")
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1"}
    done = subprocess.run([sys.executable, "-c", script, str(built)], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "50", done.stderr[-2000:]

