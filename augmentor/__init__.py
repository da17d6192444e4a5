"""augmentor: generative and classic data augmentation for image-classification datasets.

Nothing heavy is imported here: the CLI's ``--help`` must stay fast and torch-free.
"""

__version__ = "0.1.0"
