"""One root error for everything analysis refuses, split by whether retrying can help.

The daemon fails a job at once on a permanent error and retries a transient
one, so the split lives here where the cause is known.
"""


class AnalysisError(Exception):
    """Root of every error an analysis raises on purpose."""

    permanent = False


class InputError(AnalysisError):
    """The file itself is at fault (missing, empty, not audio, truncated, too long)."""

    permanent = True


class DecoderError(AnalysisError):
    """The decoder failed for a reason outside the file (missing binary, killed, out of memory)."""
