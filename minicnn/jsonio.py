"""Strict JSON for metrics files: NaN and Inf (undefined metrics, e.g. AUC of a one-class split) become null.

Python's json writes NaN as the bare word NaN, which is not JSON: other tools refuse the file.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Any

import numpy as np


def json_safe(obj: Any) -> Any:
    """A copy of `obj` made of dict/list/str/int/float/bool/None, with NaN and +-Inf replaced by None."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    raise TypeError(f"json_safe: cannot write a {type(obj).__name__} as JSON")


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    """Write `obj` as strict JSON (NaN/Inf -> null) atomically: a crash leaves any old file intact."""
    path = os.fspath(path)
    text = json.dumps(json_safe(obj), indent=indent, allow_nan=False) + "\n"
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError):
            raise OSError(e.errno, f"write_json: cannot write {path!r} ({e.strerror or e})") from e
        raise
