"""Read and write `.safetensors` files with NumPy only.

Layout: an 8-byte little-endian header length n, n bytes of JSON, then the raw buffers:

    {"name": {"dtype": "F32", "shape": [64, 3, 7, 7], "data_offsets": [begin, end]}, ...,
     "__metadata__": {"key": "string value"}}

Offsets count from the first byte after the header; data is little-endian and C-ordered.
The reader checks every entry (known dtype, non-negative integer shape, end - begin equal to
the element count times the item size) and that the buffers tile the data region exactly, with
no overlap, gap or byte past the end, as the format requires.
"""
from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from collections import OrderedDict
from typing import Any, Union

import numpy as np

from .errors import WeightsError

PathLike = Union[str, "os.PathLike[str]"]
MAX_HEADER = 100_000_000  # the reference implementation's limit

# safetensors dtype name -> NumPy dtype (little-endian). BF16 has no NumPy type: it is read as
# uint16 bits and widened to float32 (its upper half) by `read_safetensors`.
DTYPES: dict[str, str] = {
    "BOOL": "|b1", "U8": "|u1", "I8": "|i1", "U16": "<u2", "I16": "<i2", "F16": "<f2", "BF16": "<u2",
    "U32": "<u4", "I32": "<i4", "F32": "<f4", "U64": "<u8", "I64": "<i8", "F64": "<f8",
}
_NAMES = {np.dtype(v): k for k, v in DTYPES.items() if k != "BF16"}


def bf16_to_float32(bits: np.ndarray) -> np.ndarray:
    """uint16 bfloat16 bit patterns -> float32 (bfloat16 is the top half of a float32)."""
    return (bits.astype("<u4") << 16).view("<f4").astype(np.float32)


def read_safetensors(path: PathLike, with_metadata: bool = False) -> Any:
    """{name: ndarray} in file order (BF16 widened to float32); with_metadata=True returns
    (tensors, metadata dict) instead."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        blob = f.read()
    tensors, metadata = parse_safetensors(blob, path)
    return (tensors, metadata) if with_metadata else tensors


def parse_safetensors(blob: bytes, path: str = "<bytes>") -> tuple[OrderedDict[str, np.ndarray], dict]:
    """Parse the bytes of a safetensors file; errors name `path`."""
    def bad(msg: str) -> WeightsError:
        return WeightsError(f"{path}: not a valid safetensors file: {msg}")

    if len(blob) < 8:
        raise bad(f"{len(blob)} bytes, shorter than the 8-byte header length (truncated?)")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER:
        raise bad(f"header length {n} exceeds the {MAX_HEADER}-byte limit")
    if 8 + n > len(blob):
        raise bad(f"header length {n} runs past the end of the {len(blob)}-byte file (truncated?)")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"header is not UTF-8 JSON ({e})") from None
    if not isinstance(header, dict):
        raise bad(f"header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad("__metadata__ must map strings to strings")
    data = memoryview(blob)[8 + n:]
    spans = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise bad(f"entry {name!r} must have exactly dtype, shape and data_offsets, got {info!r}")
        dt, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if dt not in DTYPES:
            raise bad(f"entry {name!r} has unsupported dtype {dt!r} (known: {', '.join(DTYPES)})")
        if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                  for s in shape):
            raise bad(f"entry {name!r} has invalid shape {shape!r}")
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)
                or not 0 <= offs[0] <= offs[1]):
            raise bad(f"entry {name!r} has invalid data_offsets {offs!r}")
        itemsize = np.dtype(DTYPES[dt]).itemsize
        need = math.prod(shape) * itemsize
        if offs[1] - offs[0] != need:
            raise bad(f"entry {name!r}: data_offsets {offs} span {offs[1] - offs[0]} bytes but dtype {dt} "
                      f"and shape {shape} need {need}")
        if offs[1] > len(data):
            raise bad(f"entry {name!r}: data_offsets {offs} run past the {len(data)}-byte data region (truncated?)")
        spans.append((offs[0], offs[1], name))
    # the buffers must tile [0, len(data)) exactly: sorted, each begins where the previous ended
    pos, prev = 0, None
    for begin, end, name in sorted(spans):
        if begin < pos:
            raise bad(f"entry {name!r} (bytes {begin}..{end}) overlaps entry {prev!r}")
        if begin > pos:
            raise bad(f"unreferenced bytes {pos}..{begin} before entry {name!r}")
        pos, prev = end, name
    if pos != len(data):
        raise bad(f"{len(data) - pos} trailing bytes after the last buffer")
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for name, info in header.items():
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        arr = bf16_to_float32(arr) if info["dtype"] == "BF16" else arr.astype(arr.dtype.newbyteorder("="))
        out[name] = arr  # astype copied: the arrays own their memory and are writable
    return out, dict(metadata)


def write_safetensors(tensors: dict, path: PathLike, metadata: dict | None = None) -> None:
    """Write {name: array-like} atomically (a crash leaves any previous file intact)."""
    path = os.fspath(path)
    arrays = OrderedDict()
    for name, v in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise WeightsError(f"{path}: tensor names must be strings other than '__metadata__', got {name!r}")
        a = np.asarray(v.numpy() if hasattr(v, "numpy") else v)
        le = a.dtype.newbyteorder("<")
        if le not in _NAMES:
            raise WeightsError(f"{path}: tensor {name!r} has dtype {a.dtype}, which safetensors cannot store")
        arrays[name] = np.array(a, dtype=le, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    header: dict[str, Any] = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise WeightsError(f"{path}: metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    pos = 0
    for name, a in arrays.items():
        header[name] = {"dtype": _NAMES[a.dtype],
                        "shape": list(a.shape), "data_offsets": [pos, pos + a.nbytes]}
        pos += a.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # pad with spaces so the buffers start 8-byte aligned
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for a in arrays.values():
                f.write(a.tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
