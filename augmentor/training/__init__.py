"""Training loops (classifier now; GAN and VAE later) and their device/seed helpers."""
