"""Training: checkpoints, the training loop, recipes and the `pesto train` command."""
