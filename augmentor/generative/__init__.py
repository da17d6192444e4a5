"""Generative models: the registry of kinds (DCGAN, VAE), their architectures, the training loop (exact resume,
rollback, DiffAugment), the ``Generator`` that training returns and ``Generator.from_run`` loads, and
``augmentor sample``.

This is the only package that knows the kinds apart; everything else asks the ``Generator`` or the registry."""

from augmentor.generative import run_config  # noqa: F401  (registers the generative run kinds)
