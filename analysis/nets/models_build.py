"""Freeze the trained checkpoints shipped in the `musicnn` wheel into graphs Essentia runs offline.

The `tensorflow` Python package and Essentia's bundled TensorFlow runtime must
not share a process, so the freezing always happens in a child process
(`python -m beatwatch.analysis.nets.models_build`); `build_musicnn` is safe to call from
anywhere, including a process that already tags with Essentia.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from .zoo import MEL_BANDS, PATCH_FRAMES, TAG_SAMPLE_RATE, list_models, write_metadata

# musicnn checkpoint folder -> model name in the models folder (and in `summary.tags[].model`).
MUSICNN_MODELS = {"MSD_musicnn": "msd-musicnn", "MTT_musicnn": "mtt-musicnn"}
# The node names and patch shape Essentia's TensorflowPredictMusiCNN feeds and reads.
INPUT_NODE = "model/Placeholder"
OUTPUT_NODE = "model/Sigmoid"
EMBEDDING_NODE = "model/dense/BiasAdd"
BUILDER = Path(__file__)
# A change to either file can change what gets written, so either makes built models stale.
BUILDER_SOURCES = (BUILDER, BUILDER.with_name("zoo.py"))


class BuildError(RuntimeError):
    """The models could not be built; the message says which model and why."""


def outputs(out_dir: Path, checkpoint: str) -> tuple[Path, Path]:
    """The graph and json a checkpoint becomes."""
    name = MUSICNN_MODELS[checkpoint]
    return out_dir / f"{name}.pb", out_dir / f"{name}.json"


def is_fresh(out_dir: Path, checkpoint: str) -> bool:
    """Built already, and after the last change to this builder."""
    newest_source = max(source.stat().st_mtime for source in BUILDER_SOURCES)
    return all(path.is_file() and path.stat().st_mtime >= newest_source for path in outputs(out_dir, checkpoint))


def build_musicnn(out_dir: Path, which: tuple[str, ...] = ("MSD_musicnn", "MTT_musicnn"), *,
                  force: bool = False) -> list[Path]:
    """Freeze each checkpoint in `which` into `out_dir` (graph + zoo json); returns the graphs.

    Checkpoints already frozen by this version of the builder are skipped unless `force`.
    """
    unknown = [name for name in which if name not in MUSICNN_MODELS]
    if unknown:
        raise BuildError(f"unknown musicnn checkpoint {unknown[0]!r}: choose from {', '.join(MUSICNN_MODELS)}")
    todo = [name for name in which if force or not is_fresh(out_dir, name)]
    if todo:
        env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, "-m", "beatwatch.analysis.nets.models_build", "--out", str(out_dir.absolute()),
                   "--freeze", *todo]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or ["no error output"]
            raise BuildError(f"freezing {', '.join(todo)} into {out_dir} failed: {lines[-1]}")
    return [outputs(out_dir, name)[0] for name in which]


def _freeze(checkpoint: str, out_dir: Path) -> Path:
    """Rebuild musicnn's own graph in inference mode, restore the shipped weights, write constants only.

    Runs only in the child process: it imports the `tensorflow` Python package.
    """
    import tensorflow as tf
    from musicnn import configuration, models

    labels = configuration.MSD_LABELS if checkpoint.startswith("MSD") else configuration.MTT_LABELS
    prefix = str(Path(models.__file__).parent / checkpoint) + "/"
    graph = tf.Graph()
    with graph.as_default():
        with tf.name_scope("model"):
            patches = tf.compat.v1.placeholder(tf.float32, [None, PATCH_FRAMES, MEL_BANDS])
            # A Python False (not a placeholder) bakes in moving-average batch norm and no dropout.
            logits = models.define_model(patches, False, checkpoint, len(labels))[0]
            tf.nn.sigmoid(logits)
        with tf.compat.v1.Session(graph=graph) as session:
            tf.compat.v1.train.Saver().restore(session, prefix)
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
                session, graph.as_graph_def(), [OUTPUT_NODE, EMBEDDING_NODE])
        # Essentia bundles TensorFlow 2.5, which logs an error for every attribute newer ops added;
        # attributes left at their defaults can go, and with them the noise.
        frozen = tf.compat.v1.train.export_meta_graph(graph_def=frozen, strip_default_attrs=True).graph_def
    graph_path, json_path = outputs(out_dir, checkpoint)
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = graph_path.with_suffix(".pb.tmp")
    partial.write_bytes(frozen.SerializeToString())
    os.replace(partial, graph_path)
    write_metadata(json_path, name=MUSICNN_MODELS[checkpoint], classes=list(labels), input=INPUT_NODE,
                   output=OUTPUT_NODE, embeddings=EMBEDDING_NODE, input_shape=[PATCH_FRAMES, MEL_BANDS],
                   sample_rate=TAG_SAMPLE_RATE,
                   description=f"musicnn 0.1.0 {checkpoint} checkpoint, frozen with TensorFlow {tf.__version__}")
    return graph_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m beatwatch.analysis.nets.models_build",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models"), help="models folder (default: ./models)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the graphs are up to date")
    parser.add_argument("--freeze", nargs="+", metavar="CHECKPOINT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.freeze:
        for checkpoint in args.freeze:
            _freeze(checkpoint, args.out)
        return 0
    try:
        build_musicnn(args.out, force=args.force)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for info in list_models(args.out):
        print(info.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
