"""Training loops, data folders, resumable checkpoints and loss curves."""
