"""Audio analyses that turn one decoded file into a beat-accurate timeline.

Nothing in here knows about jobs, queues or SQL: callers hand in a path or a
decoded signal and get plain results back. Importing this package loads no
neural runtime: onnxruntime loads with `nets.networks` (and inside
`nets.device.resolve_device`), Essentia and its TensorFlow with `nets.tags`,
so processes that never run a network (the CLI's status, the supervisor,
the watcher) do not pay for them.
"""

ANALYZER_VERSION = "0.4.9"
