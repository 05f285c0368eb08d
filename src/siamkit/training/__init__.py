"""Training: build a model from a config, fit it, write a run directory."""
