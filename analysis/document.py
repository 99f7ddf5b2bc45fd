"""What the sidecar document and the database rows share: the schema id and the one rule for text.

The analysis writes documents, the store checks and saves them, the daemon
rewrites a linked document's path: each imports this module, which imports
nothing, so the store depends on no audio code and the analysis on no store.
"""

# Fields are only ever added under one id (timeline.sections and each bar's `section` came with analyzer 0.2.0):
# a reader that skips keys it does not know reads every /1 document; a renamed or removed field needs /2.
SCHEMA = "beatwatch.timeline/1"


def printable(text: str) -> str:
    """Text JSON and SQLite can hold: a file name that is not valid UTF-8 shows U+FFFD where its odd bytes were."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
