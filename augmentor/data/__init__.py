"""Datasets in and out: the ImageSet type, readers, writers, the provenance manifest and image measures."""

from augmentor.data.imageset import Dataset, ImageSet

__all__ = ["Dataset", "ImageSet"]
