"""Image classifiers: the architecture registry (``create_model``), training, evaluation, the
``Classifier`` loaded from a run folder, and filter/activation pictures."""

from augmentor.classifiers.registry import ArchInfo, create_model, list_archs

__all__ = ["ArchInfo", "create_model", "list_archs"]
