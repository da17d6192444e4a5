"""The training floor under every trainer: the one step loop, checkpoints, EMA, the resume rule, stop requests."""
