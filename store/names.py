"""A file name as the store keeps it: readable text, and its exact bytes when the text cannot hold them.

A name that is not valid UTF-8 prints with U+FFFD where its odd bytes were,
so two such names can print alike; the pair (printable, exact bytes) tells
them apart wherever a name is a key (jobs, file_paths), and turns back into
the name the file system knows.
"""

from __future__ import annotations

import os

from beatwatch.analysis.document import printable


def raw_bytes(path: str | os.PathLike[str]) -> bytes | None:
    """The exact bytes of a name that is not valid UTF-8, else None (its printable text is exact)."""
    text = os.fspath(path)
    return os.fsencode(text) if printable(text) != text else None


def name_key(path: str | os.PathLike[str]) -> tuple[str, bytes | None]:
    """(printable path, exact bytes or None): what a stored name is compared by."""
    return printable(os.fspath(path)), raw_bytes(path)


def exact_path(path: str, raw: bytes | None) -> str:
    """The name a stored (path, raw_path) pair stands for, as the file system knows it."""
    return os.fsdecode(raw) if raw is not None else path
