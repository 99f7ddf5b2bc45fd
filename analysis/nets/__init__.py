"""The neural networks and where they run: onnxruntime sessions, the device choice, the tag models and their builder.

Only processes that run networks import from here; the rest of the daemon
must not pay for onnxruntime, Essentia or TensorFlow.
"""
