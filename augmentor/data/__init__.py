"""Datasets in and out: the ImageSet type, readers, writers and the provenance manifest."""

from augmentor.data.imageset import Dataset, ImageSet

__all__ = ["Dataset", "ImageSet"]
