"""Generative models: the DCGAN and VAE architectures, their training loop (exact resume, rollback,
DiffAugment), the ``Generator`` that loads a run and makes images, and ``augmentor sample``.

This is the only package that branches on the generative kind."""
