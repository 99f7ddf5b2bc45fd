"""Time: beats, bars and meter from the downbeat network, tempo, transients and danceability built on them."""
