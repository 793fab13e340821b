"""Hugging Face checkpoints in and out: `core` says what a family's converter provides."""
