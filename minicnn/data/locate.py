"""Find a named dataset folder: the user's --data, else $MINICNN_DATA_DIR/<name>, else the
project's neighbour ../shared/data/<name>, else ~/.cache/minicnn/<name>."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .checks import check_split_folder
from .errors import DataError

DATA_ENV = "MINICNN_DATA_DIR"


def search_roots() -> list[Path]:
    """Where named datasets are looked for, in order (existing or not)."""
    roots = []
    if os.environ.get(DATA_ENV):
        roots.append(Path(os.environ[DATA_ENV]).expanduser())
    roots.append(Path(__file__).resolve().parents[3] / "shared" / "data")  # <checkout>/../shared/data
    roots.append(Path.home() / ".cache" / "minicnn")
    return roots


def find_folder(data: str | os.PathLike | None, name: str, splits: Sequence[str] = ("train", "test"),
                how_to_get: str = "") -> Path:
    """The dataset folder holding `splits` sub-folders: `data` when given, else the first
    <root>/<name> of `search_roots()`; DataError naming every place tried otherwise."""
    if data is not None:
        path = Path(data).expanduser()
        if not path.exists():
            raise DataError(f"--data {path} does not exist")
        try:
            return check_split_folder(path, splits)
        except FileNotFoundError as e:
            raise DataError(f"--data {e}") from None
    tried = [root / name for root in search_roots()]
    for path in tried:
        if path.is_dir():
            return check_split_folder(path, splits)
    where = ", ".join(str(p) for p in tried)
    raise DataError(f"no {name}/ folder found (looked in {where}); pass --data FOLDER or set {DATA_ENV}"
                    + (f". {how_to_get}" if how_to_get else ""))
