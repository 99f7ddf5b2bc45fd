"""Pictures and sounds of a stored timeline: plots and click tracks, drawn from the sidecar, never from the analyses."""
