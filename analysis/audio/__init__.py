"""The signal layer: one decode per file, the STFTs and the rhythm network's input features built from it."""
