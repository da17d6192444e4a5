"""Classic augmentation: albumentations presets, pipeline files, quotas and batch expansion."""
