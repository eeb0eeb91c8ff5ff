"""PneumoniaMNIST (MedMNIST v2 and MedMNIST+), read from a local .npz or downloaded from Zenodo."""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .download import download_url, md5sum
from .errors import DataError, DownloadError, open_npz
from .npz import NpzDataset

ZENODO = "https://zenodo.org/records/10519652/files/{name}?download=1"
MD5 = {  # official files of Zenodo record 10519652
    28: "28209eda62fecd6e6a2d98b1501bb15f",
    64: "8f4eceb4ccffa70c672198ea285246c6",
    128: "05b46931834c231683c68f40c47b2971",
    224: "d6a3c71de1b945ea11211b03746c1fe1",
}
# Re-ordered copies known to hold exactly the official images and labels (accepted silently):
# the 28 px file of the project's shared data folder (its README documents this md5).
KNOWN_COPIES = {28: ("05c5b701061cc0b6e5199c92ea6a3ec6",)}
SPLITS = ("train", "val", "test")
# Official (normal, pneumonia) counts per split; MedMNIST+ sizes hold the same images.
CLASS_COUNTS = {"train": (1214, 3494), "val": (135, 389), "test": (234, 390)}
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

    A file already in `root` is verified before use (`verify_file`): an md5 equal to the
    official one (or to a known re-ordered copy) is accepted silently; any other md5 is
    accepted only if keys, dtypes, shapes, labels and the per-split class counts all match
    the official dataset, with a warning naming both checksums (strict_md5=True makes that an
    error). Anything else, a truncated file included, raises `DataError` naming the file;
    only a missing file triggers the md5-checked download. No data at all raises
    FileNotFoundError (download=False) or DownloadError: only those two may justify a fallback.
    """

    def __init__(self, split: str = "train", size: int = 28, root: str | os.PathLike | None = None,
                 download: bool = True, transform: Callable | None = None, url: str | None = None,
                 strict_md5: bool = False):
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
                raise DownloadError(f"PneumoniaMNIST: could not download {url} ({e}); {hint}") from e
        verify_file(path, size, strict_md5)
        super().__init__(path, split, transform=transform, classes=CLASSES)


_verified: dict[tuple, str] = {}  # (path, size, mtime, image size) -> md5, so the 3 splits hash once


def verify_file(path: str | os.PathLike, size: int = 28, strict_md5: bool = False) -> str:
    """Check that `path` is the official PneumoniaMNIST file for `size`; returns its md5.

    Raises DataError naming the file, the found and expected md5 and what to do."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, size)
    if key in _verified:
        return _verified[key]
    found, expected = md5sum(path), MD5[size]
    if found != expected and found not in KNOWN_COPIES.get(size, ()):
        name = file_name(size)
        fix = (f"delete it so that the official file is downloaded again (or copy the official {name} from "
               f"Zenodo record 10519652 there); to train on a different file on purpose, load it with "
               f"NpzDataset (the example's --data FILE)")
        where = f"PneumoniaMNIST: {path} has md5 {found}, but the official {name} has md5 {expected}"
        if strict_md5:
            raise DataError(f"{where} (strict_md5=True); {fix}")
        try:
            problem = _structure_problem(path, size)
        except DataError as e:  # damaged: not even readable as an .npz
            problem = str(e)
        if problem:
            raise DataError(f"{where}, and its content differs: {problem}; {fix}")
        warnings.warn(f"{where}; its keys, shapes, labels and class counts match the official data, so it is "
                      f"used (a re-ordered or re-saved copy?)", stacklevel=3)
    _verified[key] = found
    return found


def _structure_problem(path: Path, size: int) -> str:
    """'' if every split has uint8 (N, size, size) images and 0/1 labels with the official class counts."""
    with open_npz(path, "PneumoniaMNIST") as z:
        missing = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels") if f"{s}_{k}" not in z.files]
        if missing:
            return f"it is not a MedMNIST file: missing arrays {missing}"
        for s in SPLITS:
            dtype, shape = _npy_header(z, f"{s}_images")
            n_norm, n_pneu = CLASS_COUNTS[s]
            want = (n_norm + n_pneu, size, size)
            if dtype != np.uint8 or tuple(shape[:3]) != want or shape[3:] not in ((), (1,)):
                return f"{s}_images is {dtype} {tuple(shape)}, expected uint8 {want}"
            try:
                labels = np.asarray(z[f"{s}_labels"]).reshape(-1)
            except Exception as e:  # truncated entry: zlib, EOF or CRC errors
                return f"{s}_labels cannot be read ({type(e).__name__}: {e}), the file is damaged"
            values = sorted(set(np.unique(labels).tolist()))
            if not set(values) <= {0, 1}:
                return f"{s}_labels hold the values {values[:10]}, expected 0 (normal) and 1 (pneumonia)"
            counts = (int((labels == 0).sum()), int((labels == 1).sum()))
            if counts != (n_norm, n_pneu):
                return (f"{s} has {counts[0]} normal and {counts[1]} pneumonia labels, the official split has "
                        f"{n_norm} and {n_pneu} (labels inverted or shuffled?)")
    return ""


def _npy_header(z: np.lib.npyio.NpzFile, key: str) -> tuple[np.dtype, tuple]:
    """dtype and shape of one .npz entry without reading its data."""
    try:
        assert z.zip is not None  # an NpzFile always has its archive open
        with z.zip.open(key + ".npy") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
    except Exception as e:
        raise DataError(f"array {key!r} cannot be read ({type(e).__name__}: {e}), the file is damaged") from e
    return np.dtype(dtype), tuple(shape)
