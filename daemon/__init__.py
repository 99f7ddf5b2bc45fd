"""The beatwatch service: configuration, command line, and (later) watcher, scheduler and workers."""
