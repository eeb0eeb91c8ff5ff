"""PneumoniaMNIST (MedMNIST v2 and MedMNIST+), read from a local .npz or downloaded from Zenodo."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .download import download_url
from .npz import NpzDataset

ZENODO = "https://zenodo.org/records/10519652/files/{name}?download=1"
MD5 = {  # official files of Zenodo record 10519652
    28: "28209eda62fecd6e6a2d98b1501bb15f",
    64: "8f4eceb4ccffa70c672198ea285246c6",
    128: "05b46931834c231683c68f40c47b2971",
    224: "d6a3c71de1b945ea11211b03746c1fe1",
}
SPLITS = ("train", "val", "test")
CLASSES = ["normal", "pneumonia"]


def default_root() -> Path:
    """Where datasets live: $MINICNN_DATA_DIR if set, else ~/.cache/minicnn."""
    env = os.environ.get("MINICNN_DATA_DIR")
    return Path(env) if env else Path.home() / ".cache" / "minicnn"


def file_name(size: int) -> str:
    """Official file name for a resolution: pneumoniamnist.npz, pneumoniamnist_64.npz, ..."""
    return "pneumoniamnist.npz" if size == 28 else f"pneumoniamnist_{size}.npz"


class PneumoniaMNIST(NpzDataset):
    """Chest X-rays labelled 0 = normal, 1 = pneumonia; images (size, size, 1) uint8.

    A file already in `root` is accepted after checking its keys, shapes and labels (so a
    re-ordered copy with a different md5 works); otherwise it is downloaded (md5-checked).
    """

    def __init__(self, split: str = "train", size: int = 28, root: Optional[str | os.PathLike] = None,
                 download: bool = True, transform: Optional[Callable] = None, url: Optional[str] = None):
        if split not in SPLITS:
            raise ValueError(f"PneumoniaMNIST: split must be one of {SPLITS}, got {split!r}")
        if size not in MD5:
            raise ValueError(f"PneumoniaMNIST: size must be one of {sorted(MD5)}, got {size!r}")
        name = file_name(size)
        path = Path(root) if root is not None else default_root()
        path = path / name
        if not path.is_file():
            url = url or ZENODO.format(name=name)
            hint = (f"put the official {name} (Zenodo record 10519652, {ZENODO.format(name=name)}) at {path}, "
                    "or pass root= / set MINICNN_DATA_DIR to the folder that holds it")
            if not download:
                raise FileNotFoundError(f"PneumoniaMNIST: {path} not found and download=False; {hint}")
            try:
                download_url(url, path, md5=MD5[size])
            except Exception as e:
                raise RuntimeError(f"PneumoniaMNIST: could not download {url} ({e}); {hint}") from e
        _check_file(path)
        super().__init__(path, split, transform=transform, classes=CLASSES)
        if self.images.shape[1:3] != (size, size):
            raise ValueError(f"PneumoniaMNIST: {path} holds {split} images of shape {self.images.shape[1:3]}, "
                             f"expected ({size}, {size}) for size={size}")
        if self.targets.size and self.targets.max() > 1:
            raise ValueError(f"PneumoniaMNIST: {path} {split}_labels must be 0 or 1, found {self.targets.max()}")


def _check_file(path: Path) -> None:
    """A local file must hold images and labels for every split."""
    with np.load(path, allow_pickle=False) as z:
        missing = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels") if f"{s}_{k}" not in z.files]
    if missing:
        raise ValueError(f"PneumoniaMNIST: {path} is not a MedMNIST file: missing {missing}")
