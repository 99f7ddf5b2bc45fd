"""The beatwatch service: configuration, command line, inbox watcher and intake, supervisor, worker pool and
workers, the inference process, and publishing finished analyses."""
