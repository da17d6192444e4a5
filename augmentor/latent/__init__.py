"""Latent space of a trained generator: interpolation, directions, editing, inversion and jitter."""
