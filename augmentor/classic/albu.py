"""The single place albumentations is imported, with its update check (a network call) turned off."""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations
import cv2

A = albumentations
BORDER_CONSTANT = cv2.BORDER_CONSTANT

__all__ = ["BORDER_CONSTANT", "A"]
