"""Latent space: interpolation (and, later, directions, editing and inversion)."""
