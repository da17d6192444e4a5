"""Scoring generated images: FID/KID in a domain classifier's features, diversity, memorisation, CAS."""
