"""Audio analyses that turn one decoded file into a beat-accurate timeline.

Nothing in here knows about jobs, queues or SQL: callers hand in a path or a
decoded signal and get plain results back.
"""

import os

# Essentia's bundled TensorFlow logs CUDA probing at import; keep stderr for real errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ANALYZER_VERSION = "0.1.0"
