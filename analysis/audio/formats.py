"""Which files are music, in a module that imports nothing: the CLI and the watcher need only this.

Kept apart from decode.py, which loads numpy (about 130 ms of `beatwatch status`'s start-up).
"""

# Names the daemon and `analyze FOLDER` treat as music (ffmpeg decodes them all); anything else is left alone.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aif", ".aiff",
                              ".wma"})
