"""What `beatwatch analyze` shows while a file runs: a bar with stage and ETA on a terminal, plain lines elsewhere.

A 3-hour mix takes minutes, and a command that prints nothing for minutes
looks hung. On a terminal one line is redrawn in place and erased before the
file's result line; into a pipe or a log, redrawing would leave carriage
returns, so each new stage (or each further tenth of the way) is a line.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import TextIO

from .logs import escape_controls
from .status import clock, eta_s, progress_bar

PLAIN_STEP = 0.1


class ProgressDisplay:
    def __init__(self, stream: TextIO | None, *, tty: bool, now: Callable[[], float] = time.monotonic) -> None:
        self._stream, self._tty, self._now = stream, tty, now
        self._name, self._started = "", 0.0
        self._last: tuple[str, float] | None = None

    def start(self, name: str) -> None:
        self._name, self._started, self._last = escape_controls(name), self._now(), None

    def __call__(self, stage: str, fraction: float) -> None:
        if self._stream is None:
            return
        eta = clock(eta_s(self._now() - self._started, fraction))
        if self._tty:
            line = f"{progress_bar(fraction)} {stage:<10} ETA {eta}  {self._name}"
            width = shutil.get_terminal_size().columns
            self._stream.write("\r\x1b[K" + line[:max(width - 1, 20)])
        elif self._last is None or stage != self._last[0] or fraction - self._last[1] >= PLAIN_STEP:
            self._stream.write(f"{self._name}: {stage} {fraction * 100:.0f}% (ETA {eta})\n")
            self._last = (stage, fraction)
        self._stream.flush()

    def finish(self) -> None:
        """Clear the bar so the result line starts at the margin."""
        if self._stream is not None and self._tty:
            self._stream.write("\r\x1b[K")
            self._stream.flush()


def for_analyze(stdout: TextIO, stderr: TextIO, *, json_output: bool) -> ProgressDisplay:
    """The bar on whichever of stderr/stdout is a terminal; else plain lines on stdout, unless stdout carries JSON."""
    if stderr.isatty():
        return ProgressDisplay(stderr, tty=True)
    if stdout.isatty() and not json_output:
        return ProgressDisplay(stdout, tty=True)
    return ProgressDisplay(None if json_output else stdout, tty=False)
