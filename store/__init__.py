"""Persistence for beatwatch: SQLite rows users query with SQL, and the sidecar JSON files.

The package knows the sidecar document, never audio; it is handed a finished
timeline and stores it.
"""
