"""Benchmarks that measure beatwatch against songs whose every beat, bar, chord and key is known."""
