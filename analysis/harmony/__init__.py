"""Pitch: chords per beat, the key and its changes, and the tonal evidence and decoder they share."""
