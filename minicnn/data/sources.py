"""Where the pneumonia data comes from: a file or folder the user names, the cache, a download, or phantoms.

    splits = pneumonia_splits(data=None, size=None)     # PneumoniaMNIST 28 px, cached or downloaded
    splits.datasets["train"], splits.name, splits.fallback_reason

The order of the search, for `data=None`: $MINICNN_DATA_DIR or ~/.cache/minicnn, then the
official Zenodo download. With no real data at all, synthetic chest phantoms stand in
(`fallback=True`; `fallback_reason` then says why, so the caller can say so loudly).
`data` may be a MedMNIST-style .npz, a folder holding pneumoniamnist*.npz, or a Kaggle
"Chest X-Ray Images (Pneumonia)" folder with train/ and test/ (validation carved from train/).
Every item is (uint8 image (H, W) or (H, W, 1), label 0 = normal / 1 = pneumonia).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import transforms as T
from .checks import check_split_folder
from .errors import DataError, DownloadError
from .folder import ImageFolder
from .medmnist import MD5, PneumoniaMNIST
from .npz import NpzDataset
from .phantom import PhantomDataset
from .split import train_test_split

CLASSES = ["normal", "pneumonia"]
SPLITS = ("train", "val", "test")
PHANTOM_SIZES = {"train": 2000, "val": 300, "test": 600}
PHANTOM_NAME = "synthetic chest phantoms (NOT real X-rays)"
REAL_DATA_HELP = """To train on real chest X-rays, get PneumoniaMNIST (CC BY 4.0, MedMNIST v2):
  - with network access, just run this script again: it downloads pneumoniamnist.npz
    from Zenodo record 10519652 (md5-checked) into ~/.cache/minicnn;
  - or download https://zenodo.org/records/10519652/files/pneumoniamnist.npz yourself and
    pass --data /path/to/pneumoniamnist.npz (or set MINICNN_DATA_DIR to its folder);
  - or pass --data path/to/chest_xray (the Kaggle "Chest X-Ray Images (Pneumonia)" folder)."""


class DataSourceError(DataError):
    """The data the user pointed at cannot be used; the message names the path and what was expected."""


@dataclass
class DataSplits:
    """The train/val/test datasets, a human-readable name, and why phantoms were used (None if not)."""

    datasets: dict[str, Any]
    name: str
    fallback_reason: str | None = None

    @property
    def synthetic(self) -> bool:
        return self.name == PHANTOM_NAME


def phantom_splits(size: int | None = None, seed: int = 0) -> DataSplits:
    """Synthetic chest X-rays (default 64 px), 2000/300/600 images, disjoint between splits."""
    datasets = {s: PhantomDataset(s, n=n, size=size or 64, seed=seed) for s, n in PHANTOM_SIZES.items()}
    return DataSplits(datasets, PHANTOM_NAME)


def folder_splits(path: str | Path, size: int | None = None, val_fraction: float = 0.1,
                  seed: int = 0) -> DataSplits:
    """Kaggle layout chest_xray/{train,test}/{NORMAL,PNEUMONIA}, resized to size (default 180) px."""
    path = check_split_folder(path, ("train", "test"))  # a missing test/ is a DataError naming the folder
    resize = T.Resize((size or 180, size or 180))
    train_all = ImageFolder(path / "train", transform=resize, grayscale=True)
    test = ImageFolder(path / "test", transform=resize, grayscale=True)
    if [c.lower() for c in train_all.classes] != CLASSES:
        raise DataSourceError(f"{path}/train has classes {train_all.classes}, expected NORMAL and PNEUMONIA")
    train, val = train_test_split(train_all, test_size=val_fraction, stratify=True, seed=seed)
    return DataSplits({"train": train, "val": val, "test": test}, f"{path.name} folder")


def local_splits(data: str | Path, size: int | None = None, val_fraction: float = 0.1,
                 seed: int = 0) -> DataSplits:
    """The data at a path the user gave: a .npz file, a folder of pneumoniamnist*.npz, or a chest_xray folder."""
    path = Path(data).expanduser()
    if not path.exists():
        raise DataSourceError(f"--data {path} does not exist")
    if path.is_file():
        if path.suffix != ".npz":
            raise DataSourceError(f"--data {path} is a file but not a .npz")
        try:
            return DataSplits({s: NpzDataset(path, s) for s in SPLITS}, path.name)
        except KeyError as e:
            raise DataSourceError(f"--data {path}: {e.args[0]} (expected MedMNIST keys train_images, train_labels, "
                                  f"val_images, ..., test_labels)") from e
    if (path / "train").is_dir() or (path / "test").is_dir():
        return folder_splits(path, size, val_fraction, seed)
    if not sorted(path.glob("pneumoniamnist*.npz")):
        raise DataSourceError(f"--data {path} holds neither train/ and test/ folders nor pneumoniamnist*.npz")
    size = size or 28
    return DataSplits({s: PneumoniaMNIST(s, size=size, root=path, download=False) for s in SPLITS},
                      f"PneumoniaMNIST {size}px")


def pneumonia_splits(data: str | Path | None = None, size: int | None = None, *, synthetic: bool = False,
                     fallback: bool = True, val_fraction: float = 0.1, seed: int = 0) -> DataSplits:
    """Find the pneumonia data (see the module docstring); DataSourceError when it cannot be used."""
    if synthetic:
        return phantom_splits(size, seed)
    if data:
        return local_splits(data, size, val_fraction, seed)
    px = size or 28
    try:  # the cache ($MINICNN_DATA_DIR or ~/.cache/minicnn), else the official download
        mnist_size = px if px in MD5 else 28  # other sizes are resized from 28 px by the caller
        return DataSplits({s: PneumoniaMNIST(s, size=mnist_size) for s in SPLITS}, f"PneumoniaMNIST {px}px")
    except (FileNotFoundError, DownloadError) as e:  # offline and nothing cached: the only case for phantoms
        # A damaged or wrong file (DataError) is never replaced by phantoms: the user must see it.
        if not fallback:
            raise DataSourceError(f"no real data: {e}\n\n{REAL_DATA_HELP}") from e
        splits = phantom_splits(size, seed)  # phantoms default to 64 px
        splits.fallback_reason = str(e)
        return splits
