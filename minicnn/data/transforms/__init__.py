"""Image transforms: `t(img, rng=None)` on PIL images or uint8 HW/HWC arrays (see _image.py).

Typical use: `Compose([Resize(224), RandomAffine(10, translate=(0.1, 0.1)), RandomHorizontalFlip(), ToArray(),
Normalize(0.5, 0.25)])`. Random transforms draw from `rng`, or from the per-sample generator
that DataLoader installs, so a seeded loader augments identically with any worker count.
"""
from ._image import Transform
from .affine import RandomAffine, RandomRotation, affine_matrix, warp
from .array import GaussianNoise, Normalize, ToArray
from .basic import (
    CenterCrop,
    Compose,
    Grayscale,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomVerticalFlip,
    Resize,
)
from .clahe import CLAHE, clahe, clahe_naive
from .components import label_components, otsu_threshold
from .keras import KerasAugment
from .lungcrop import LungCrop, foreground_box

__all__ = [
    "Transform", "Compose", "Resize", "CenterCrop", "RandomResizedCrop", "RandomHorizontalFlip", "RandomVerticalFlip",
    "RandomRotation", "RandomAffine", "Grayscale", "RandomGrayscale", "ToArray", "Normalize", "GaussianNoise",
    "KerasAugment", "CLAHE", "clahe", "clahe_naive", "LungCrop", "foreground_box", "label_components",
    "otsu_threshold", "affine_matrix", "warp",
]
