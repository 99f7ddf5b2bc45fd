"""Audio analyses that turn one decoded file into a beat-accurate timeline.

Nothing in here knows about jobs, queues or SQL: callers hand in a path or a
decoded signal and get plain results back.
"""

import os

# Essentia's bundled TensorFlow logs CUDA probing at import; keep stderr for real errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Essentia's bundled TensorFlow 2.5 dies with SIGFPE on its first graph run when oneDNN kernels are on.
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"

import onnxruntime  # noqa: E402

# madmom's ONNX graphs declare 1-D outputs and warn on every call that the real ones are 2-D.
onnxruntime.set_default_logger_severity(3)

ANALYZER_VERSION = "0.1.0"
