"""Rotation, translation, scaling and shear through Pillow's C affine warp.

Coordinates are continuous pixel coordinates (x right, y down, pixel centres at i + 0.5),
which is what Image.transform uses, so the identity matrix reproduces the image exactly.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from PIL import Image

from ..rng import get_rng
from ._image import ImageLike, Transform, fill_for, is_number, like, resample, to_pil

PadMode = Literal["edge", "symmetric", "wrap"]
PAD_MODES: dict[str, PadMode] = {"nearest": "edge", "reflect": "symmetric", "wrap": "wrap"}  # Keras/SciPy -> np.pad


def affine_matrix(angle: float, translate: tuple[float, float], scale: float | tuple[float, float],
                  shear: tuple[float, float], center: tuple[float, float]) -> np.ndarray:
    """Forward 3x3 map input -> output: shift by translate after rotating, shearing, scaling about center.

    angle and shear in degrees; positive angle turns the picture counter-clockwise; scale > 1 enlarges.
    """
    cx, cy = center
    sx, sy = (scale, scale) if is_number(scale) else scale
    a = math.radians(angle)
    to_origin = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], dtype=np.float64)
    scaling = np.diag([sx, sy, 1.0])
    shearing = np.array([[1, math.tan(math.radians(shear[0])), 0], [math.tan(math.radians(shear[1])), 1, 0], [0, 0, 1]])
    # y points down, so a counter-clockwise turn on screen is a clockwise one in (x, y)
    rotation = np.array([[math.cos(a), math.sin(a), 0], [-math.sin(a), math.cos(a), 0], [0, 0, 1]])
    back = np.array([[1, 0, cx + translate[0]], [0, 1, cy + translate[1]], [0, 0, 1]], dtype=np.float64)
    return back @ rotation @ shearing @ scaling @ to_origin


def warp(img: Image.Image, forward: np.ndarray, fill: int | tuple = 0, interpolation: str = "bilinear",
         fill_mode: str = "constant") -> Image.Image:
    """Apply a forward affine map; uncovered pixels get `fill` or, for fill_mode nearest/reflect/wrap,
    the padded image's content (done by padding with np.pad, then one Pillow warp)."""
    inverse = np.linalg.inv(forward)  # Pillow wants output -> input
    w, h = img.size
    if fill_mode != "constant":
        if fill_mode not in PAD_MODES:
            raise ValueError(f"fill_mode must be 'constant' or one of {sorted(PAD_MODES)}, got {fill_mode!r}")
        corners = inverse @ np.array([[0, w, 0, w], [0, 0, h, h], [1, 1, 1, 1]], dtype=np.float64)  # (3, 4)
        left, top = (max(0, math.ceil(-corners[i].min()) + 2) for i in (0, 1))
        right, bottom = max(0, math.ceil(corners[0].max() - w) + 2), max(0, math.ceil(corners[1].max() - h) + 2)
        a = np.asarray(img)
        pad = ((top, bottom), (left, right)) + (((0, 0),) if a.ndim == 3 else ())
        img = Image.fromarray(np.pad(a, pad, mode=PAD_MODES[fill_mode]))
        inverse = np.array([[1, 0, left], [0, 1, top], [0, 0, 1]]) @ inverse  # padded coordinates
    return img.transform((w, h), Image.Transform.AFFINE, tuple(inverse[:2].ravel()),
                         resample=resample(interpolation), fillcolor=fill_for(img, fill))


def _range(value: float | Sequence[float], who: str, name: str) -> tuple[float, float]:
    """A symmetric number d -> (-d, d); a pair stays."""
    if is_number(value):
        if value < 0:
            raise ValueError(f"{who}: {name} must be >= 0 when given as one number, got {value}")
        return (-float(value), float(value))
    lo, hi = (float(v) for v in value)
    if lo > hi:
        raise ValueError(f"{who}: {name} range must be (min, max) with min <= max, got {value}")
    return lo, hi


class RandomAffine(Transform):
    """Random rotation (degrees), translation (fractions of width, height), scale and shear (degrees).

    shear: d -> x-shear in (-d, d); (a, b) -> x-shear in (a, b); (a, b, c, d) -> x in (a, b), y in (c, d).
    Pixels uncovered by the warp get `fill`.
    """

    def __init__(self, degrees: float | Sequence[float] = 0, translate: tuple[float, float] | None = None,
                 scale: tuple[float, float] | None = None, shear: float | Sequence[float] | None = None,
                 fill: int | tuple = 0, interpolation: str = "bilinear"):
        self.degrees = _range(degrees, "RandomAffine", "degrees")
        if translate is not None and not all(0 <= t <= 1 for t in translate):
            raise ValueError(f"RandomAffine: translate fractions must lie in [0, 1], got {translate}")
        if scale is not None and not 0 < scale[0] <= scale[1]:
            raise ValueError(f"RandomAffine: scale must be (min, max) with 0 < min <= max, got {scale}")
        self.translate, self.scale, self.fill, self.interpolation = translate, scale, fill, interpolation
        self.shear: tuple[tuple[float, float] | None, tuple[float, float] | None]
        if shear is None:
            self.shear = (None, None)
        elif is_number(shear) or len(shear) == 2:
            self.shear = (_range(shear, "RandomAffine", "shear"), None)
        elif len(shear) == 4:
            self.shear = (_range(shear[:2], "RandomAffine", "shear"), _range(shear[2:], "RandomAffine", "shear"))
        else:
            raise ValueError(f"RandomAffine: shear must be a number, 2 or 4 numbers, got {shear!r}")
        resample(interpolation)  # fail now on a bad name, not at the first image

    def params(self, w: int, h: int, rng: np.random.Generator) -> tuple:
        """Draw (angle, (tx, ty), scale, (shear_x, shear_y)) in a fixed order."""
        angle = rng.uniform(*self.degrees)
        tx = ty = 0.0
        if self.translate is not None:
            max_dx, max_dy = self.translate[0], self.translate[1]
            tx, ty = rng.uniform(-max_dx, max_dx) * w, rng.uniform(-max_dy, max_dy) * h
        s = rng.uniform(*self.scale) if self.scale is not None else 1.0
        shx = rng.uniform(*self.shear[0]) if self.shear[0] is not None else 0.0
        shy = rng.uniform(*self.shear[1]) if self.shear[1] is not None else 0.0
        return angle, (tx, ty), s, (shx, shy)

    def __call__(self, img: ImageLike, rng: np.random.Generator | None = None) -> ImageLike:
        pil = to_pil(img, type(self).__name__)
        angle, t, s, sh = self.params(pil.width, pil.height, get_rng(rng))
        forward = affine_matrix(angle, t, s, sh, (pil.width / 2, pil.height / 2))
        return like(warp(pil, forward, self.fill, self.interpolation), img)


class RandomRotation(RandomAffine):
    """Rotate by a random angle in (-degrees, degrees) or (min, max), about the centre."""

    def __init__(self, degrees: float | Sequence[float], fill: int | tuple = 0,
                 interpolation: str = "bilinear"):
        super().__init__(degrees, fill=fill, interpolation=interpolation)
