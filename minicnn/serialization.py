"""`save`/`load` checkpoints (nested dicts/lists of arrays and scalars) as `.npz`, without pickle.

The tree is flattened: every array becomes one `.npy` entry of the zip, named by its path
("model/conv1.weight"), and a JSON manifest (stored as a uint8 array) describes the rest:

    {"format": "minicnn-checkpoint", "version": 1,
     "root": {"t": "dict", "k": [keys...], "v": [nodes...]}}

Node types: dict, list, tuple, int (hex string: ints of any size, e.g. PCG64 RNG state),
float (repr string, so nan/inf survive), bool, none, str, array (entry name). `load` only
parses JSON and reads arrays with allow_pickle=False, so a checkpoint can never run code.
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import zipfile
from typing import Any, BinaryIO, Union

import numpy as np

from .autograd import Tensor
from .backend import to_device

FORMAT, VERSION = "minicnn-checkpoint", 1
MANIFEST = "__minicnn_manifest__"
PathLike = Union[str, "os.PathLike[str]"]


# ---- save -----------------------------------------------------------------------------
def save(obj: Any, path: PathLike) -> None:
    """Write `obj` to `path` atomically: a crash mid-save leaves any previous file untouched."""
    if _writes_suppressed():
        return
    path = os.fspath(path)
    arrays: dict[str, np.ndarray] = {}
    root = _encode(obj, "", arrays)
    manifest = json.dumps({"format": FORMAT, "version": VERSION, "root": root}).encode("utf-8")
    arrays[MANIFEST] = np.frombuffer(manifest, dtype=np.uint8)

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save: cannot write {path!r}: folder {folder!r} does not exist")
    base = os.path.basename(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{base}.", suffix=".tmp")
    except OSError as e:
        raise OSError(e.errno, f"save: cannot write {path!r}: cannot create a file in {folder!r} "
                               f"({e.strerror or e})") from e
    started = os.fstat(fd).st_mtime
    try:
        with os.fdopen(fd, "wb") as f:
            os.chmod(tmp, _default_mode())  # mkstemp makes files private (0600)
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError):  # e.g. ENOSPC: say which checkpoint could not be written
            raise OSError(e.errno, f"save: cannot write {path!r} ({e.strerror or e}); the previous file, "
                                   f"if any, is untouched") from e
        raise
    _fsync_dir(folder)
    remove_stale_temps(folder, base, started)


def remove_stale_temps(folder: str, base: str, before: float) -> list[str]:
    """Delete temp files that earlier, killed saves of `base` left in `folder`; returns their paths.

    Only names `save` itself creates (".<base>.<8 random chars>.tmp") and only files last
    modified before `before` (the start of the current save): a save still being written by
    another process keeps touching its file and is left alone."""
    pattern = re.compile(rf"^\.{re.escape(base)}\.[a-z0-9_]{{8}}\.tmp$")
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not pattern.match(name):
            continue
        full = os.path.join(folder, name)
        try:
            st = os.lstat(full)
            if st.st_mtime < before and os.path.isfile(full) and not os.path.islink(full):
                os.remove(full)
                removed.append(full)
        except OSError:  # gone already, or not ours to delete
            pass
    return removed


def _writes_suppressed() -> bool:
    """True on ranks other than 0 while minicnn.distributed lets only rank 0 write (inside fit)."""
    dist = sys.modules.get("minicnn.distributed.comm")
    return dist is not None and dist.writes_suppressed()


def _write_npz(f: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    """Write the arrays as an uncompressed .npz archive (a zip of .npy files) into the open file `f`."""
    # Not np.savez(f, **arrays): a key such as "file" would clash with its parameters.
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, arr, allow_pickle=False)


def _default_mode() -> int:
    """The permissions open() would give a new file: 0o666 minus the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(folder: str) -> None:
    """Make the rename itself durable (POSIX); some systems cannot open a folder, which is harmless."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _encode(obj: Any, path: str, arrays: dict[str, np.ndarray]) -> dict:
    """One manifest node for `obj`; arrays found on the way are added to `arrays`."""
    if isinstance(obj, Tensor):
        obj = obj.data
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):  # NumPy/CuPy arrays and NumPy scalars
        arr = np.asarray(to_device(obj, "cpu"))
        if arr.dtype.hasobject:
            raise TypeError(f"save: the array at {path or '<root>'!r} has dtype {arr.dtype}; object arrays "
                            f"would need pickle, which minicnn checkpoints never use")
        # The entry name is only a readable label (the manifest records it), so make it a safe
        # zip name, unique ("a/b" as one key and as a nested path) and without a ".npy" ending,
        # which NpzFile would confuse with its own suffix.
        name = re.sub(r"[^\w.\-/]", "_", path).strip("/") or "root"
        while name in arrays or name == MANIFEST or name.endswith(".npy"):
            name += "~"
        arrays[name] = arr
        node: dict[str, Any] = {"t": "array", "name": name}
        if isinstance(obj, np.generic):
            node["scalar"] = True
        return node
    if obj is None:
        return {"t": "none"}
    if isinstance(obj, bool):
        return {"t": "bool", "v": obj}
    if isinstance(obj, int):
        return {"t": "int", "v": hex(obj)}  # hex: no digit limit, unlike str() of huge ints
    if isinstance(obj, float):
        return {"t": "float", "v": repr(obj)}
    if isinstance(obj, str):
        return {"t": "str", "v": obj}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {"t": kind, "v": [_encode(x, f"{path}/{i}" if path else str(i), arrays) for i, x in enumerate(obj)]}
    if isinstance(obj, dict):
        keys, values = [], []
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(f"save: dict keys must be str or int; {path or '<root>'!r} has key {k!r} "
                                f"of type {type(k).__name__}")
            keys.append(_encode(k, "", arrays))
            values.append(_encode(v, f"{path}/{k}" if path else str(k), arrays))
        return {"t": "dict", "k": keys, "v": values}
    raise TypeError(f"save: cannot store {type(obj).__name__} at {path or '<root>'!r}; checkpoints hold dicts, "
                    f"lists, tuples, arrays, str, int, float, bool and None (use .state_dict() for modules "
                    f"and optimizers)")


# ---- load -----------------------------------------------------------------------------
class CheckpointError(ValueError):
    """The file is not a minicnn checkpoint, or it is damaged."""


def load(path: PathLike) -> Any:
    """Read a checkpoint written by `save`; arrays come back as NumPy arrays."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load: no checkpoint file at {path!r}")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise CheckpointError("it is a single .npy array, not an .npz archive")
        with npz:
            return _read(npz)
    except CheckpointError as e:
        raise CheckpointError(f"load: {path!r} is not a valid minicnn checkpoint: {e}") from None
    except (ValueError, KeyError, TypeError, AttributeError, OSError, EOFError, RecursionError,
            zipfile.BadZipFile) as e:  # UnicodeDecodeError and json errors are ValueErrors
        raise CheckpointError(f"load: {path!r} is not a valid minicnn checkpoint or is damaged "
                              f"({type(e).__name__}: {e})") from None


def _read(npz: Any) -> Any:
    """Check the manifest of an open .npz and rebuild the saved object."""
    if MANIFEST not in npz.files:
        raise CheckpointError(f"it is an .npz without a minicnn manifest (entries: {npz.files[:5]})")
    manifest = json.loads(bytes(npz[MANIFEST]).decode("utf-8"))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError("its manifest lacks the minicnn format tag")
    if manifest.get("version") != VERSION:
        raise CheckpointError(f"it has format version {manifest.get('version')}; this minicnn reads "
                              f"version {VERSION}")
    return _decode(manifest["root"], npz)


def _decode(node: Any, npz: Any) -> Any:
    """Rebuild the Python value described by a manifest node."""
    if not isinstance(node, dict) or "t" not in node:
        raise CheckpointError(f"malformed manifest node {str(node)[:80]!r}")
    t = node["t"]
    if t == "array":
        arr = npz[node["name"]]
        return arr[()] if node.get("scalar") else arr
    if t == "none":
        return None
    if t == "bool":
        return bool(node["v"])
    if t == "int":
        return int(node["v"], 16)
    if t == "float":
        return float(node["v"])
    if t == "str":
        return str(node["v"])
    if t == "list":
        return [_decode(x, npz) for x in node["v"]]
    if t == "tuple":
        return tuple(_decode(x, npz) for x in node["v"])
    if t == "dict":
        if len(node["k"]) != len(node["v"]):
            raise CheckpointError(f"its manifest has a dict with {len(node['k'])} keys but {len(node['v'])} "
                                  f"values; the file is damaged or was edited")
        return {_decode(k, npz): _decode(v, npz) for k, v in zip(node["k"], node["v"])}
    raise CheckpointError(f"unknown manifest node type {t!r}")
