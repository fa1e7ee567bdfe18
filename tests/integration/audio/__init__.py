"""Speech helpers for the audio tests: espeak-ng synthesis, resampling, pocketsphinx."""
