"""Image classifiers: the architecture registry (``create_model``), training, evaluation, the ``Classifier``
that training returns and ``Classifier.from_run`` loads, and filter/activation pictures."""

from augmentor.classifiers import run_config  # noqa: F401  (registers the classifier run kind)
from augmentor.classifiers.classifier import Classifier
from augmentor.classifiers.registry import ArchInfo, create_model, list_archs

__all__ = ["ArchInfo", "Classifier", "create_model", "list_archs"]
