"""Download a file with a progress bar and an md5 check, never leaving a partial file behind."""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

CHUNK = 1 << 20


def md5sum(path: str | os.PathLike) -> str:
    """Hex md5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _default_opener(url: str) -> Any:
    return urllib.request.urlopen(url, timeout=60)


def download_url(url: str, dest: str | os.PathLike, md5: str | None = None,
                 opener: Callable[[str], Any] | None = None, progress: bool = True) -> Path:
    """Fetch `url` to `dest`: stream into a temp file beside it, check md5, then rename into place.

    `opener(url)` must return a file-like response (default: urllib's urlopen); tests pass a
    fake one. On any failure the temp file is deleted and `dest` is left untouched.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        h = hashlib.md5()
        with os.fdopen(fd, "wb") as out, (opener or _default_opener)(url) as response:
            headers = getattr(response, "headers", None)
            total = headers.get("Content-Length") if headers is not None else None
            with tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                      desc=dest.name, disable=not progress) as bar:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    h.update(block)
                    bar.update(len(block))
        if md5 is not None and h.hexdigest() != md5:
            raise OSError(f"md5 mismatch for {url}: got {h.hexdigest()}, expected {md5}; "
                          "the download is corrupt or the file changed upstream")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a dataset cache should be readable
        os.replace(tmp, dest)
    except BaseException:  # includes KeyboardInterrupt: never leave the .part file around
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return dest
