"""Image plumbing shared by the transforms: PIL <-> NumPy, the Transform base class.

Convention: a transform accepts a PIL image or a uint8 array (H, W) or (H, W, C) and returns
the same kind it was given (an (H, W, 1) array stays (H, W, 1)), except ToArray, which
always returns CHW float32.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # only named in annotations, which `from __future__ import annotations` leaves unevaluated
    from typing_extensions import TypeIs

ImageLike = Image.Image | np.ndarray

RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}


class Transform:
    """Base class: `t(img, rng=None)`; random transforms draw only from `rng` (see minicnn.data.rng)."""

    def __call__(self, img: ImageLike, rng: np.random.Generator | None = None) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def resample(name: str) -> Image.Resampling:
    if name not in RESAMPLE:
        raise ValueError(f"interpolation must be one of {sorted(RESAMPLE)}, got {name!r}")
    return RESAMPLE[name]


def check_array(img: np.ndarray, who: str) -> None:
    """Arrays must be uint8 (H, W) or (H, W, C) with C in 1, 3, 4."""
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise TypeError(f"{who}: expected a PIL image or a uint8 array (H, W) or (H, W, C) with C in 1/3/4, "
                        f"got {img.dtype} array of shape {img.shape}")


def to_pil(img: ImageLike, who: str = "transform") -> Image.Image:
    """PIL image from a PIL image or a uint8 HW/HWC array (no copy for PIL input)."""
    if isinstance(img, Image.Image):
        return img
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{who}: expected a PIL image or a NumPy array, got {type(img).__name__}")
    check_array(img, who)
    return Image.fromarray(img[:, :, 0] if img.ndim == 3 and img.shape[2] == 1 else img)


def like(out: Image.Image, ref: ImageLike) -> ImageLike:
    """Return `out` as the same kind of image as `ref` (PIL, (H, W) or (H, W, C) array)."""
    if isinstance(ref, Image.Image):
        return out
    a = np.asarray(out)
    return a[:, :, None] if a.ndim == 2 and ref.ndim == 3 else a  # (H, W) -> (H, W, 1)


def hw(img: ImageLike) -> tuple[int, int]:
    """(height, width) of a PIL image or an HW/HWC array."""
    if isinstance(img, Image.Image):
        return img.height, img.width
    return int(img.shape[0]), int(img.shape[1])


def is_number(value: object) -> TypeIs[int | float]:
    """np.isscalar(value), told to mypy: a single number here, a sequence of numbers otherwise."""
    return bool(np.isscalar(value))


def pair(size: int | tuple[int, int], who: str) -> tuple[int, int]:
    """An int or an (h, w) pair -> (h, w), validated positive."""
    h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if h <= 0 or w <= 0:
        raise ValueError(f"{who}: size must be positive, got {size!r}")
    return int(h), int(w)


def fill_for(img: Image.Image, fill: int | tuple) -> int | tuple:
    """A fill value matching the image mode: a grey level for L, a tuple for RGB(A)."""
    bands = len(img.getbands())
    if bands == 1:
        return int(fill if is_number(fill) else fill[0])
    return tuple([int(fill)] * bands) if is_number(fill) else tuple(int(v) for v in fill)
