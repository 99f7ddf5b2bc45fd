"""The models folder: Essentia model-zoo pairs (`name.pb` + `name.json`) read without TensorFlow.

Both the builder and the tagger speak this format, so a model built here and
one downloaded by hand from the Essentia zoo look the same to every reader:
the json names the classes, the graph's input and output nodes, the sample
rate and the Essentia algorithm that feeds the graph.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

MUSICNN_ALGORITHM = "TensorflowPredictMusiCNN"
HEAD_ALGORITHM = "TensorflowPredict2D"
# The zoo's oldest jsons name no algorithm; every one of them is a MusiCNN-style audio model.
DEFAULT_ALGORITHM = MUSICNN_ALGORITHM
# musicnn's training setup, which TensorflowPredictMusiCNN hard-codes too: 16 kHz audio,
# 512-sample frames every 256 samples, 96 log-mel bands, 187-frame (3 s) patches.
TAG_SAMPLE_RATE = 16000
FRAME_SIZE = 512
HOP_SIZE = 256
MEL_BANDS = 96
PATCH_FRAMES = 187


class ModelFileError(ValueError):
    """A json in the models folder that cannot describe a classifier; the message names the file and key."""


@dataclass(frozen=True)
class ModelInfo:
    """One classifier in the models folder, as its json describes it."""

    name: str
    graph: Path
    metadata: Path
    classes: tuple[str, ...]
    algorithm: str
    input: str
    output: str
    sample_rate: int
    embedding_model: str | None = None
    embedding_output: str | None = None

    def summary(self) -> str:
        """One line for `beatwatch models list`."""
        via = f" on {self.embedding_model} embeddings" if self.embedding_model else ""
        return f"{self.name}: {len(self.classes)} classes, {self.algorithm}{via} ({self.input} -> {self.output})"


def read_model(metadata: Path) -> ModelInfo:
    """Parse one zoo json; raises ModelFileError saying which key is missing or wrong."""
    try:
        doc = json.loads(metadata.read_text())
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{metadata}: not readable as JSON ({exc})") from exc
    classes = doc.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise ModelFileError(f"{metadata}: 'classes' must be a non-empty list of strings")
    schema = doc.get("schema") or {}
    inputs, outputs = schema.get("inputs") or [], schema.get("outputs") or []
    if not inputs or not outputs:
        raise ModelFileError(f"{metadata}: 'schema.inputs' and 'schema.outputs' must each name a graph node")
    inference = doc.get("inference") or {}
    embedding = inference.get("embedding_model") or {}
    return ModelInfo(
        name=metadata.stem,
        graph=metadata.with_suffix(".pb"),
        metadata=metadata,
        classes=tuple(classes),
        algorithm=inference.get("algorithm", DEFAULT_ALGORITHM),
        input=inputs[0]["name"],
        output=_node(outputs, "predictions")["name"],
        sample_rate=int(inference.get("sample_rate", TAG_SAMPLE_RATE)),
        embedding_model=embedding.get("model_name"),
        embedding_output=_node(outputs, "embeddings", required=False).get("name"),
    )


def _node(outputs: list[dict], purpose: str, *, required: bool = True) -> dict:
    """The output with this `output_purpose`; predictions fall back to the first output, as in older zoo jsons."""
    for output in outputs:
        if output.get("output_purpose") == purpose:
            return output
    return outputs[0] if required else {}


def model_files(models_dir: Path) -> list[Path]:
    """The json of every complete `.pb` + `.json` pair in the folder, by name; a missing folder has none."""
    if not models_dir.is_dir():
        return []
    return [path for path in sorted(models_dir.glob("*.json")) if path.with_suffix(".pb").is_file()]


def list_models(models_dir: Path) -> list[ModelInfo]:
    """Every classifier in the folder; raises ModelFileError naming the first malformed json."""
    return [read_model(path) for path in model_files(models_dir)]


def write_metadata(path: Path, *, name: str, classes: list[str], input: str, output: str,
                   embeddings: str | None, input_shape: list[int], algorithm: str = MUSICNN_ALGORITHM,
                   sample_rate: int = TAG_SAMPLE_RATE, description: str = "") -> Path:
    """Write a json in the zoo's layout, the only format the tagger reads."""
    outputs = [{"name": output, "type": "float", "shape": [1, len(classes)], "op": "Sigmoid",
                "output_purpose": "predictions"}]
    if embeddings:
        outputs.append({"name": embeddings, "type": "float", "op": "fully connected", "output_purpose": "embeddings"})
    doc = {
        "name": name,
        "type": "auto-tagging",
        "description": description,
        "framework": "tensorflow",
        "classes": classes,
        "model_types": ["frozen_model"],
        "schema": {"inputs": [{"name": input, "type": "float", "shape": input_shape}], "outputs": outputs},
        "inference": {"sample_rate": sample_rate, "algorithm": algorithm},
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path
