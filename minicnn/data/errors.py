"""Data errors: one class for "the data is there but wrong", kept apart from "there is no data".

`FileNotFoundError` means nothing was found (a caller may fall back, e.g. to synthetic images);
`DataError` means a file or folder exists but is damaged, mislabelled or of the wrong kind, and
must never be replaced silently by anything else. Every message names the path at fault.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np


class DataError(ValueError):
    """The data exists but is unusable (damaged, wrong checksum, wrong shape or labels); names the path."""


class DownloadError(RuntimeError):
    """A dataset was not on disk and could not be downloaded (offline, HTTP error, md5 mismatch).

    Nothing was written: like FileNotFoundError it means "no data", not "damaged data"."""


class MissingArrayError(DataError, KeyError):
    """An .npz file lacks a required array (also a KeyError, as NpzDataset raised before)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SampleError(DataError):
    """Loading one sample failed; `index`, `path` (if known) and `dataset` say which, `__cause__` why."""

    def __init__(self, message: str, index: int, path: str | None = None, dataset: Any = None):
        super().__init__(message)
        self.index, self.path, self.dataset = index, path, dataset


# np.load on a damaged .npz raises any of these, never naming the file.
NPZ_ERRORS = (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zipfile.LargeZipFile)


def open_npz(path: str | os.PathLike, who: str) -> Any:
    """np.load an .npz without pickle; a damaged or non-npz file raises DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{who}: no such file {path}")
    try:
        z = np.load(path, allow_pickle=False)
    except NPZ_ERRORS as e:
        raise DataError(f"{who}: {path} is damaged or not an .npz archive ({type(e).__name__}: {e}); "
                        f"delete it and download or copy it again") from e
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError(f"{who}: {path} is a single .npy array, not an .npz archive of named arrays")
    return z


def read_npz_array(z: Any, key: str, path: str | os.PathLike, who: str) -> np.ndarray:
    """One array of an open .npz; a truncated or corrupt entry raises DataError naming file and key."""
    try:
        return z[key]
    except KeyError:
        raise MissingArrayError(f"{who}: {path} has no array {key!r}; it holds {sorted(z.files)}") from None
    except NPZ_ERRORS as e:
        raise DataError(f"{who}: {path}: array {key!r} cannot be read, the file is damaged "
                        f"({type(e).__name__}: {e}); delete it and download or copy it again") from e


_wrappers: dict[type, type] = {}


def sample_error(cause: BaseException, message: str, index: int, path: str | None = None,
                 dataset: Any = None) -> SampleError:
    """A SampleError that is also an instance of `cause`'s class (so `except OSError` still works)."""
    cls = type(cause)
    wrapper = _wrappers.get(cls)
    if wrapper is None:
        wrapper = SampleError
        if not issubclass(SampleError, cls):
            try:  # some exception classes cannot be mixed (layout conflicts, required arguments)
                mixed = type("SampleError", (SampleError, cls), {"__module__": __name__, "__str__": _first_arg})
                mixed("probe", 0)
                wrapper = mixed
            except TypeError:
                pass
        _wrappers[cls] = wrapper
    return wrapper(message, index, path, dataset)


def _first_arg(self: BaseException) -> str:
    return str(self.args[0]) if self.args else ""
