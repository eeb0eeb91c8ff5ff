"""Augmentation with the parameters of Keras' ImageDataGenerator (the tutorials' favourite)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..rng import get_rng
from ._image import ImageLike, Transform, is_number, like, to_pil
from .affine import PAD_MODES, affine_matrix, warp
from .array import ToArray


def _shift(r: float, size: int, rng: np.random.Generator) -> float:
    """Keras shift ranges: a fraction of the size when < 1, pixels otherwise."""
    r = abs(r) * size if abs(r) < 1 else abs(r)
    return rng.uniform(-r, r) if r else 0.0


class KerasAugment(Transform):
    """ImageDataGenerator-style random augmentation of one image.

    rotation_range: degrees; width/height_shift_range: fraction (< 1) or pixels;
    shear_range: degrees; zoom_range: z -> factor in [1 - z, 1 + z] per axis, or (lo, hi),
    where a factor > 1 zooms out as in Keras; fill_mode: constant (cval) | nearest | reflect | wrap.
    rescale: when given, the result is ToArray()'s CHW float32 times 255 * rescale (so
    rescale=1/255 gives values in [0, 1]); otherwise the image kind is kept.
    """

    def __init__(self, rescale: float | None = None, rotation_range: float = 0.0, width_shift_range: float = 0.0,
                 height_shift_range: float = 0.0, shear_range: float = 0.0,
                 zoom_range: float | tuple[float, float] = 0.0, horizontal_flip: bool = False,
                 vertical_flip: bool = False, fill_mode: str = "nearest", cval: int = 0,
                 interpolation: str = "bilinear"):
        if fill_mode != "constant" and fill_mode not in PAD_MODES:
            raise ValueError(f"KerasAugment: fill_mode must be constant, nearest, reflect or wrap, got {fill_mode!r}")
        zoom = (1 - zoom_range, 1 + zoom_range) if is_number(zoom_range) else tuple(zoom_range)
        if len(zoom) != 2 or not 0 < zoom[0] <= zoom[1]:
            raise ValueError(f"KerasAugment: zoom_range must give factors 0 < lo <= hi, got {zoom_range!r}")
        self.rescale, self.rotation_range = rescale, rotation_range
        self.zoom_range: tuple[float, float] = (zoom[0], zoom[1])
        self.width_shift_range, self.height_shift_range = width_shift_range, height_shift_range
        self.shear_range = shear_range
        self.horizontal_flip, self.vertical_flip = horizontal_flip, vertical_flip
        self.fill_mode, self.cval, self.interpolation = fill_mode, cval, interpolation

    def __call__(self, img: ImageLike, rng: np.random.Generator | None = None) -> Any:
        rng = get_rng(rng)
        pil = to_pil(img, "KerasAugment")
        w, h = pil.size
        angle = rng.uniform(-self.rotation_range, self.rotation_range) if self.rotation_range else 0.0
        tx, ty = _shift(self.width_shift_range, w, rng), _shift(self.height_shift_range, h, rng)
        shear = rng.uniform(-self.shear_range, self.shear_range) if self.shear_range else 0.0
        zx, zy = rng.uniform(*self.zoom_range, size=2) if self.zoom_range != (1, 1) else (1.0, 1.0)
        flip_x = self.horizontal_flip and rng.random() < 0.5
        flip_y = self.vertical_flip and rng.random() < 0.5
        forward = affine_matrix(angle, (tx, ty), (1 / zx, 1 / zy), (shear, 0.0), (w / 2, h / 2))
        # flips are affine too: fold them into the one warp
        forward = np.array([[-1 if flip_x else 1, 0, w if flip_x else 0],
                            [0, -1 if flip_y else 1, h if flip_y else 0], [0, 0, 1]]) @ forward
        out = like(warp(pil, forward, self.cval, self.interpolation, self.fill_mode), img)
        if self.rescale is None:
            return out
        return ToArray()(out) * np.float32(255 * self.rescale)  # (C, H, W) float32
