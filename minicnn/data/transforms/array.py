"""From images to network input: ToArray (HWC uint8 -> CHW float32), Normalize, GaussianNoise."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from ..rng import get_rng
from ._image import ImageLike, Transform, check_array

Stat = float | Sequence[float]


class ToArray(Transform):
    """PIL image or uint8 (H, W[, C]) array -> (C, H, W) float32 in [0, 1]."""

    def __call__(self, img: ImageLike, rng: np.random.Generator | None = None) -> np.ndarray:
        a = np.asarray(img) if isinstance(img, Image.Image) else img
        if not isinstance(a, np.ndarray):
            raise TypeError(f"ToArray: expected a PIL image or a uint8 array, got {type(img).__name__}")
        check_array(a, "ToArray")
        if a.ndim == 2:
            a = a[:, :, None]  # (H, W) -> (H, W, 1)
        out = np.empty((a.shape[2], a.shape[0], a.shape[1]), dtype=np.float32)  # (C, H, W), C-contiguous
        return np.multiply(a.transpose(2, 0, 1), np.float32(1 / 255), out=out)


class Normalize(Transform):
    """(x - mean) / std per channel on a (C, H, W) float array; scalars apply to every channel."""

    def __init__(self, mean: Stat, std: Stat):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be > 0, got {self.std.tolist()}")

    def __call__(self, x: ImageLike, rng: np.random.Generator | None = None) -> np.ndarray:
        if not isinstance(x, np.ndarray) or x.ndim != 3 or not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"Normalize: expected a float (C, H, W) array (use ToArray first), got "
                            f"{type(x).__name__} {getattr(x, 'dtype', '')} {getattr(x, 'shape', '')}")
        for name, v in (("mean", self.mean), ("std", self.std)):
            if v.size not in (1, x.shape[0]):
                raise ValueError(f"Normalize: {v.size} {name} values for an image with {x.shape[0]} channels "
                                 f"(shape {x.shape})")
        mean, std = self.mean[:, None, None], self.std[:, None, None]  # (C, 1, 1) broadcasts over H, W
        return ((x - mean) / std).astype(np.float32, copy=False)


class GaussianNoise(Transform):
    """Add N(0, std^2) noise; on float arrays as is (optionally clipped), on uint8 images in units
    of the full range (std=0.05 means 0.05 * 255 grey levels), clipped and rounded back to uint8."""

    def __init__(self, std: float = 0.05, clip: tuple[float, float] | None = (0.0, 1.0), p: float = 1.0):
        if std < 0:
            raise ValueError(f"GaussianNoise: std must be >= 0, got {std}")
        self.std, self.clip, self.p = std, clip, p

    def __call__(self, x: ImageLike, rng: np.random.Generator | None = None) -> ImageLike:
        rng = get_rng(rng)
        if rng.random() >= self.p:
            return x
        a = np.asarray(x) if isinstance(x, Image.Image) else x
        noise = rng.standard_normal(a.shape, dtype=np.float32)
        if np.issubdtype(a.dtype, np.floating):
            out = a + noise * np.float32(self.std)
            return np.clip(out, *self.clip) if self.clip is not None else out
        check_array(a, "GaussianNoise")
        out = np.clip(np.rint(a + noise * np.float32(self.std * 255)), 0, 255).astype(np.uint8)
        return Image.fromarray(out) if isinstance(x, Image.Image) else out
