"""One log format for every beatwatch process, with control characters escaped where a line is formatted.

File names come from whoever can write into the inbox. Logged raw, a name
holding a newline forges a log line of its own, and ESC or BEL bytes repaint
or ring the terminal of whoever reads the log. Escaping in the formatter
rather than at each call site covers every message, including ones added later.
"""

from __future__ import annotations

import logging
import os
import re
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Under systemd the journal stamps each line itself and reads an sd-daemon "<N>" prefix as its syslog priority
# (shown in colour, filtered with `journalctl -p`), so the line carries the priority instead of a time.
JOURNAL_FORMAT = "<%(priority)d>%(levelname)s %(name)s: %(message)s"
SYSLOG_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

# C0, DEL, C1, the Unicode line and paragraph separators, and the surrogates a non-UTF-8 byte of a
# file name decodes to (surrogateescape): everything that moves the cursor, drives the terminal or is no text.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\udc80-\udcff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# A traceback's lines after the first are indented this much, so that in the log only a record's own first
# line starts at the margin, whatever an exception's message holds.
_CONTINUATION = "  "


def escape_controls(text: str) -> str:
    """text with control characters as \\n, \\r, \\t or \\xNN (a name's undecodable byte as the byte it was);
    letters of any script, spaces and symbols stay as they are."""
    return _CONTROL.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


class EscapingFormatter(logging.Formatter):
    """The message on one line with its control characters escaped; a traceback kept multi-line but indented."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        record.priority = syslog_priority(record.levelno)
        return super().formatMessage(record)

    def formatException(self, ei) -> str:
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    return "\n".join(_CONTINUATION + escape_controls(line) for line in text.split("\n"))


def syslog_priority(levelno: int) -> int:
    return next((p for level, p in sorted(SYSLOG_PRIORITY.items(), reverse=True) if levelno >= level), 7)


def stderr_is_the_journal() -> bool:
    """systemd sets JOURNAL_STREAM to the device:inode of the stream it connected; a process whose stderr was
    redirected elsewhere since (or a shell that inherited the variable) keeps the ordinary format."""
    value = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return value == f"{st.st_dev}:{st.st_ino}"


def configure(level: int) -> None:
    """Log to stderr (the journal under systemd) through the escaping formatter; each process calls this once."""
    handler = logging.StreamHandler()
    handler.setFormatter(EscapingFormatter(JOURNAL_FORMAT if stderr_is_the_journal() else FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
