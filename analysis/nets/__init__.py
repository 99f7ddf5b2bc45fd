"""The neural networks and where they run: onnxruntime sessions, the device choice, the tag models and their builder.

Only processes that run networks import networks.py or tags.py, which load
onnxruntime, madmom's models and Essentia's TensorFlow; the rest of the daemon
must not pay for them. device.py and zoo.py import no runtime, so the CLI and
the supervisor may use DeviceError and the models folder's format.
"""
