"""Synthetic images for a real dataset: the sources (classic, generator, edit, jitter), the quality gates
that filter them, and ``augmentor expand``, which writes real + synthetic as one ImageFolder."""
