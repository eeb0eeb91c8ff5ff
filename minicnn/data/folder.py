"""ImageFolder: one sub-folder per class (e.g. chest_xray/train/{NORMAL,PNEUMONIA}/*.jpeg)."""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .bitdepth import detect_bits, png_significant_bits, scale_to_uint8
from .dataset import Dataset, check_index
from .errors import DataError

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".pgm", ".ppm")


class ImageLoadError(DataError, OSError):
    """An image file could not be decoded (unreadable, truncated or not an image)."""


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def to_uint8(img: Image.Image, grayscale: bool | None, bits: int | None = None,
             declared_bits: int | None = None) -> np.ndarray:
    """Decoded PIL image -> (H, W, C) uint8 with C = 1 (grayscale) or 3 (colour).

    Values are kept, mode by mode:
    - L: as is; 1 (bilevel): 0 and 255; LA: the alpha is dropped.
    - I;16*, I (16/32-bit integers): scaled to 0..255 by their bit depth: `bits` if given, else
      `declared_bits` (a PNG's sBIT chunk), else the smallest of 8, 10, 12, 14, 16 bits holding the
      image's maximum; v -> round(v * 255 / (2**bits - 1)). So a 12-bit X-ray in a 16-bit PNG spans
      0..255, not 0..15. Negative values are refused.
    - F (float): values in [0, 1] times 255; larger values by the integer rule; NaN/negative refused.
    - RGB; RGBA (alpha dropped, not blended); P/PA (through the palette); CMYK, YCbCr, ... (Pillow's
      conversion to RGB). grayscale=True turns colour into grey with Pillow's ITU-R 601-2 luma.
    `grayscale=None` keeps the file's kind: single-band modes give C = 1, everything else C = 3.
    """
    if grayscale is None:
        grayscale = img.mode in ("1", "L", "LA") + HIGH_DEPTH_MODES
    if img.mode in HIGH_DEPTH_MODES:  # Pillow's convert('L') would clip 12/16-bit values at 255
        a = np.asarray(img)
        if a.dtype.kind == "f":
            if not np.isfinite(a).all() or (a.size and a.min() < 0):
                raise ValueError("float image (mode F) holds NaN, inf or negative values")
            top = float(a.max()) if a.size else 0.0
            a8 = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8) if top <= 1.0 else \
                scale_to_uint8(np.rint(a), detect_bits(top, bits or declared_bits))
        else:
            if a.size and int(a.min()) < 0:
                raise ValueError(f"{img.mode} image holds negative values (min {int(a.min())}); "
                                 "convert it to unsigned grey levels first")
            a8 = scale_to_uint8(a, detect_bits(int(a.max()) if a.size else 0, bits or declared_bits))
        img = Image.fromarray(a8)
    img = img.convert("L" if grayscale else "RGB")
    out = np.asarray(img)
    return out[:, :, None] if out.ndim == 2 else out  # (H, W) -> (H, W, 1)


def load_image(path: str | os.PathLike, grayscale: bool | None = None, bits: int | None = None) -> np.ndarray:
    """Decode an image file to (H, W, C) uint8 keeping its values (rules: `to_uint8`).

    bits: the significant bits of 16-bit files when known (e.g. 12); default: the PNG's sBIT
    chunk, else detected from the image's maximum. Raises ImageLoadError naming the file."""
    try:
        with Image.open(path) as img:
            img.load()  # decode now so truncated files fail here, with the path
            declared = png_significant_bits(path) if img.mode in HIGH_DEPTH_MODES and bits is None else None
            return to_uint8(img, grayscale, bits, declared)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ImageLoadError(f"cannot read image {path}: {e}") from e


def _class_folders(root: Path) -> list[str]:
    """Sorted class sub-folder names, skipping (with a warning) links that would duplicate images."""
    real_root = root.resolve()
    seen: dict[Path, str] = {}
    names = []
    for d in sorted(root.iterdir(), key=lambda p: p.name):
        if _hidden(d.name) or not d.is_dir():
            continue
        real = d.resolve()
        clash = None
        if real == real_root or real in real_root.parents:
            clash = f"it links to {real}, which contains the dataset root {root}"
        elif real in seen:
            clash = f"it links to the same folder as class {seen[real]!r}"
        elif any(real in p.parents or p in real.parents for p in seen):
            clash = f"it links to {real}, which overlaps another class folder"
        if clash:
            warnings.warn(f"ImageFolder: skipping class folder {d}: {clash}", stacklevel=3)
            continue
        seen[real] = d.name
        names.append(d.name)
    return names


class ImageFolder(Dataset):
    """Images under `root/<class>/...` (searched recursively), labelled by sorted class name.

    Hidden files and folders, `__MACOSX` and files without an image extension are ignored.
    `grayscale`: True -> (H, W, 1), False -> (H, W, 3), None -> whichever the file is.
    `bits`: significant bits of 16-bit images (e.g. 12), else per file (see `load_image`).
    A class folder that is a link back to the root, to one of its parents or to another class
    folder is skipped with a warning (it would duplicate images under a second label).
    `on_error='skip'`: an unreadable image is reported once with a warning and replaced by the
    next readable sample, so the dataset length and batch shapes stay stable.
    """

    def __init__(self, root: str | os.PathLike, transform: Callable | None = None,
                 extensions: Sequence[str] = IMG_EXTENSIONS, grayscale: bool | None = None,
                 on_error: str = "raise", bits: int | None = None):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"ImageFolder: on_error must be 'raise' or 'skip', got {on_error!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"ImageFolder: {self.root} is not a directory")
        self.transform, self.grayscale, self.on_error, self.bits = transform, grayscale, on_error, bits
        self.extensions = tuple(e.lower() for e in extensions)
        self.classes = _class_folders(self.root)
        if not self.classes:
            raise FileNotFoundError(f"ImageFolder: {self.root} has no class sub-folders "
                                    "(expected root/<class>/<image files>)")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples: list[tuple[str, int]] = []
        for c in self.classes:
            files = self._find_images(self.root / c)
            if not files:
                raise FileNotFoundError(f"ImageFolder: class folder {self.root / c} holds no images "
                                        f"with extensions {self.extensions}")
            self.samples += [(f, self.class_to_idx[c]) for f in files]
        self.targets = np.array([t for _, t in self.samples], dtype=np.int64)
        self.bad_files: set[str] = set()

    def _find_images(self, folder: Path) -> list[str]:
        """Image files under `folder`, recursively, sorted for a stable order across machines."""
        found = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not _hidden(d)]  # prune in place: os.walk skips them
            found += [os.path.join(dirpath, f) for f in filenames
                      if not _hidden(f) and f.lower().endswith(self.extensions)]
        return sorted(found)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        i = check_index(index, len(self), f"ImageFolder({self.root})")
        for step in range(len(self)):
            path, label = self.samples[(i + step) % len(self)]
            try:
                image = load_image(path, self.grayscale, self.bits)
                break
            except ImageLoadError as e:
                if self.on_error == "raise":
                    raise
                if path not in self.bad_files:
                    self.bad_files.add(path)
                    warnings.warn(f"ImageFolder: skipping unreadable image ({e})", stacklevel=2)
        else:
            raise ImageLoadError(f"ImageFolder: no readable image in {self.root}")
        if self.transform is not None:
            image = self.transform(image)
        return image, label
