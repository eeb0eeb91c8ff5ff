"""Composition, resizing, cropping, flipping and grey conversion (Pillow for the pixel work)."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from ..rng import get_rng
from ._image import ImageLike, Transform, fill_for, hw, like, pair, resample, to_pil


class Compose(Transform):
    """Apply transforms in order, handing every minicnn Transform the same generator."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, img: ImageLike, rng: np.random.Generator | None = None) -> Any:
        rng = get_rng(rng)
        for t in self.transforms:
            img = t(img, rng=rng) if isinstance(t, Transform) else t(img)
        return img


class Resize(Transform):
    """int: scale the shorter side to `size` keeping the aspect ratio; (h, w): resize to exactly that."""

    def __init__(self, size: int | tuple[int, int], interpolation: str = "bilinear"):
        self.size, self.interpolation = size, interpolation
        self._resample = resample(interpolation)

    def target(self, h: int, w: int) -> tuple[int, int]:
        """Output (h, w) for an input of (h, w)."""
        if isinstance(self.size, (int, np.integer)):
            s = int(self.size)
            return (s, max(1, round(w * s / h))) if h <= w else (max(1, round(h * s / w)), s)
        return pair(self.size, "Resize")

    def __call__(self, img: ImageLike, rng: np.random.Generator | None = None) -> ImageLike:
        h, w = hw(img)
        th, tw = self.target(h, w)
        if (th, tw) == (h, w):
            return img  # nothing to do: skip a full decode-copy
        return like(to_pil(img, "Resize").resize((tw, th), self._resample), img)


class CenterCrop(Transform):
    """Crop the centre (h, w); a smaller image is padded with `fill` first."""

    def __init__(self, size: int | tuple[int, int], fill: int = 0):
        self.size, self.fill = pair(size, "CenterCrop"), fill

    def __call__(self, img: ImageLike, rng: np.random.Generator | None = None) -> ImageLike:
        (th, tw), (h, w) = self.size, hw(img)
        top, left = (h - th) // 2, (w - tw) // 2
        if isinstance(img, np.ndarray) and top >= 0 and left >= 0:
            return img[top:top + th, left:left + tw]  # a view: no copy needed
        pil = to_pil(img, "CenterCrop")
        out = Image.new(pil.mode, (tw, th), fill_for(pil, self.fill))
        out.paste(pil, (-left, -top))  # negative offsets crop, positive ones pad
        return like(out, img)


class RandomResizedCrop(Transform):
    """Crop a random area fraction `scale` and aspect `ratio`, resized to `size` (Inception-style)."""

    def __init__(self, size: int | tuple[int, int], scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), interpolation: str = "bilinear"):
        self.size, self.scale, self.ratio = pair(size, "RandomResizedCrop"), scale, ratio
        self.interpolation = interpolation
        self._resample = resample(interpolation)

    def box(self, h: int, w: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the crop: 10 tries, then the central crop at a legal ratio."""
        area = h * w
        log_r = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_r))
            cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
        aspect = min(max(w / h, self.ratio[0]), self.ratio[1])
        cw, ch = (w, round(w / aspect)) if w / h < aspect else (round(h * aspect), h)
        ch, cw = min(ch, h), min(cw, w)
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def __call__(self, img: ImageLike, rng: np.random.Generator | None = None) -> ImageLike:
        top, left, ch, cw = self.box(*hw(img), get_rng(rng))
        th, tw = self.size
        out = to_pil(img, "RandomResizedCrop").resize((tw, th), self._resample, box=(left, top, left + cw, top + ch))
        return like(out, img)


class RandomHorizontalFlip(Transform):
    """Mirror left-right with probability p."""

    axis = 1

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, img: ImageLike, rng: np.random.Generator | None = None) -> ImageLike:
        if get_rng(rng).random() >= self.p:
            return img
        if isinstance(img, Image.Image):
            op = Image.Transpose.FLIP_LEFT_RIGHT if self.axis == 1 else Image.Transpose.FLIP_TOP_BOTTOM
            return img.transpose(op)
        return np.flip(img, axis=self.axis)


class RandomVerticalFlip(RandomHorizontalFlip):
    """Mirror top-bottom with probability p (rarely sensible for chest X-rays)."""

    axis = 0


class Grayscale(Transform):
    """Convert to grey; num_output_channels=3 repeats it (for models that expect RGB)."""

    def __init__(self, num_output_channels: int = 1):
        if num_output_channels not in (1, 3):
            raise ValueError(f"Grayscale: num_output_channels must be 1 or 3, got {num_output_channels}")
        self.num_output_channels = num_output_channels

    def __call__(self, img: ImageLike, rng: np.random.Generator | None = None) -> ImageLike:
        grey = to_pil(img, "Grayscale").convert("L")
        if isinstance(img, Image.Image):
            return grey if self.num_output_channels == 1 else grey.convert("RGB")
        a = np.asarray(grey)  # (H, W)
        if self.num_output_channels == 3:
            return np.repeat(a[:, :, None], 3, axis=2)  # (H, W, 3)
        return a[:, :, None] if img.ndim == 3 else a


class RandomGrayscale(Transform):
    """With probability p, convert to grey keeping the number of channels."""

    def __init__(self, p: float = 0.1):
        self.p = p

    def __call__(self, img: ImageLike, rng: np.random.Generator | None = None) -> ImageLike:
        if get_rng(rng).random() >= self.p:
            return img
        channels = len(img.getbands()) if isinstance(img, Image.Image) else (img.shape[2] if img.ndim == 3 else 1)
        return Grayscale(3 if channels >= 3 else 1)(img)
