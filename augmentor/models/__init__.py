"""Image classifiers adapted to small inputs, built by name from one registry (``create_model``)."""

from augmentor.models.registry import ArchInfo, create_model, list_archs

__all__ = ["ArchInfo", "create_model", "list_archs"]
