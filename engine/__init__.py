"""Training and evaluation: config, loop, checkpoints, metrics, distributed set-up."""
