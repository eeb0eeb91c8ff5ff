"""ImageFolder: one sub-folder per class (e.g. chest_xray/train/{NORMAL,PNEUMONIA}/*.jpeg)."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
from PIL import Image

from .dataset import Dataset, check_index

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".pgm", ".ppm")


class ImageLoadError(OSError):
    """An image file could not be decoded (unreadable, truncated or not an image)."""


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def to_uint8(img: Image.Image, grayscale: Optional[bool]) -> np.ndarray:
    """Decoded PIL image -> (H, W, C) uint8 with C = 1 (grayscale) or 3 (colour)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit X-rays: Pillow's convert('L') would clip
        a = np.asarray(img).astype(np.int64)
        a = a >> 8 if a.max() > 255 else a
        img = Image.fromarray(a.clip(0, 255).astype(np.uint8))
    if grayscale is None:  # keep the file's kind of image: grey stays grey, everything else is RGB
        grayscale = img.mode in ("1", "L", "LA", "I", "F")
    img = img.convert("L" if grayscale else "RGB")
    a = np.asarray(img)
    return a[:, :, None] if a.ndim == 2 else a  # (H, W) -> (H, W, 1)


def load_image(path: str | os.PathLike, grayscale: Optional[bool] = None) -> np.ndarray:
    """Decode an image file to (H, W, C) uint8; raises ImageLoadError naming the file."""
    try:
        with Image.open(path) as img:
            img.load()  # decode now so truncated files fail here, with the path
            return to_uint8(img, grayscale)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ImageLoadError(f"cannot read image {path}: {e}") from e


class ImageFolder(Dataset):
    """Images under `root/<class>/...` (searched recursively), labelled by sorted class name.

    Hidden files and folders, `__MACOSX` and files without an image extension are ignored.
    `grayscale`: True -> (H, W, 1), False -> (H, W, 3), None -> whichever the file is.
    `on_error='skip'`: an unreadable image is reported once with a warning and replaced by the
    next readable sample, so the dataset length and batch shapes stay stable.
    """

    def __init__(self, root: str | os.PathLike, transform: Optional[Callable] = None,
                 extensions: Sequence[str] = IMG_EXTENSIONS, grayscale: Optional[bool] = None,
                 on_error: str = "raise"):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"ImageFolder: on_error must be 'raise' or 'skip', got {on_error!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"ImageFolder: {self.root} is not a directory")
        self.transform, self.grayscale, self.on_error = transform, grayscale, on_error
        self.extensions = tuple(e.lower() for e in extensions)
        self.classes = sorted(d.name for d in self.root.iterdir() if d.is_dir() and not _hidden(d.name))
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
                image = load_image(path, self.grayscale)
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
