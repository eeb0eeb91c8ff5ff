"""Crop the empty margins around the body in an X-ray: threshold, keep large regions, take their box."""
from __future__ import annotations

import numpy as np

from ._image import ImageLike, Transform, to_pil
from .components import label_components, otsu_threshold


def foreground_box(grey: np.ndarray, threshold: str | int = "otsu", min_area: float = 0.02,
                   connectivity: int = 8) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) around the regions brighter than `threshold` covering >= min_area
    of the image (small bright specks such as burnt-in letters are ignored); None if there are none."""
    t = otsu_threshold(grey) if threshold == "otsu" else int(threshold)
    labels, n = label_components(grey > t, connectivity)
    if n == 0:
        return None
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]  # (n,) pixels per region
    big = np.flatnonzero(areas >= min_area * grey.size) + 1
    if big.size == 0:
        return None
    keep = np.isin(labels, big)
    rows, cols = np.flatnonzero(keep.any(axis=1)), np.flatnonzero(keep.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


class LungCrop(Transform):
    """Crop to the box of the large bright regions, plus `margin` (fraction of each side).

    The output size varies with the image, so follow it with Resize. Images with no large
    region are returned unchanged.
    """

    def __init__(self, threshold: str | int = "otsu", min_area: float = 0.02, margin: float = 0.02,
                 connectivity: int = 8):
        if threshold != "otsu" and not 0 <= int(threshold) <= 255:
            raise ValueError(f"LungCrop: threshold must be 'otsu' or a grey level 0..255, got {threshold!r}")
        self.threshold, self.min_area, self.margin, self.connectivity = threshold, min_area, margin, connectivity

    def __call__(self, img: ImageLike, rng: np.random.Generator | None = None) -> ImageLike:
        pil = to_pil(img, "LungCrop")
        grey = np.asarray(pil.convert("L"))
        box = foreground_box(grey, self.threshold, self.min_area, self.connectivity)
        if box is None:
            return img
        h, w = grey.shape
        dy, dx = round(self.margin * h), round(self.margin * w)
        top, left = max(box[0] - dy, 0), max(box[1] - dx, 0)
        bottom, right = min(box[2] + dy, h), min(box[3] + dx, w)
        if isinstance(img, np.ndarray):
            return img[top:bottom, left:right]
        return pil.crop((left, top, right, bottom))
