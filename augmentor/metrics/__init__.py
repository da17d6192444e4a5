"""Scoring generated images: FID/KID (domain classifier or local Inception-v3 features), diversity, copies, CAS."""
