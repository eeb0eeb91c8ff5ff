"""Read PyTorch `.pth`/`.pt` checkpoints without torch and without running code from the file.

A `torch.save` file is a pickle: a program for a small stack machine whose GLOBAL/REDUCE
instructions can import and call anything, which is how a malicious file runs commands. The
`RestrictedUnpickler` here resolves every global through an allow-list of our own stand-ins,
never through an import: containers (collections.OrderedDict) and the tensor/storage rebuild
functions, which this module emulates with NumPy. Any other global stops the load with an
error naming it, before anything is called.

Formats:
- zip (torch >= 1.6): `<name>/data.pkl` holds the object; each storage is an entry
  `<name>/data/<key>` of raw bytes (`<name>/byteorder` says little or big endian).
- legacy (torch < 1.6, `_use_new_zipfile_serialization=False`): pickles of a magic number,
  the protocol version and system info, then the object, then the list of storage keys, then
  each storage as an 8-byte element count followed by its bytes.
Tensors come back as NumPy arrays (copies, C-ordered); bfloat16 is widened to float32.
"""
from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Union

import numpy as np

from .errors import WeightsError
from .safetensors import bf16_to_float32

PathLike = Union[str, "os.PathLike[str]"]
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# storage class name -> element dtype (little-endian form; "bf16" is read as uint16 bits)
STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "bf16",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "|i1",
    "ByteStorage": "|u1", "BoolStorage": "|b1", "UntypedStorage": "|u1",
}


class _Sealed:
    """Base of our stand-in objects: a pickle's BUILD instruction may not alter them."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"BUILD on a {type(self).__name__} is not allowed")


class StorageType(_Sealed):
    """Stand-in for torch.FloatStorage and friends: only carries the element dtype."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]

    def np_dtype(self, byteorder: str) -> np.dtype:
        dt = np.dtype("<u2" if self.dtype == "bf16" else self.dtype)
        return dt.newbyteorder(">") if byteorder == "big" and dt.itemsize > 1 else dt

    def __call__(self, *args: Any) -> Any:
        raise pickle.UnpicklingError(f"constructing torch.{self.name} directly is not allowed")


class Storage(_Sealed):
    """One storage: its key, type, element count and (once read) its 1-D array."""

    __slots__ = ("array", "key", "numel", "stype")

    def __init__(self, key: str, stype: StorageType, numel: int):
        self.key, self.stype, self.numel = key, stype, numel
        self.array: np.ndarray | None = None


class TensorRef(_Sealed):
    """A tensor still to be cut from its storage (legacy files store the bytes after the pickle)."""

    __slots__ = ("offset", "size", "storage", "stride")

    def __init__(self, storage: Any, offset: Any, size: Any, stride: Any):
        if not isinstance(storage, Storage):
            raise pickle.UnpicklingError(f"tensor rebuild got a {type(storage).__name__}, not a storage")
        for what, v in (("size", size), ("stride", stride)):
            if not isinstance(v, tuple) or not all(_is_int(s) and s >= 0 for s in v):
                raise pickle.UnpicklingError(f"tensor rebuild: invalid {what} {v!r}")
        if len(size) != len(stride) or not _is_int(offset) or offset < 0:
            raise pickle.UnpicklingError(f"tensor rebuild: invalid offset/size/stride {offset!r}/{size!r}/{stride!r}")
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def materialize(self) -> np.ndarray:
        """A C-ordered copy of the viewed elements, after checking they lie inside the storage."""
        st = self.storage
        arr = st.array
        assert arr is not None
        if 0 in self.size:
            out = np.zeros(self.size, dtype=arr.dtype)
        else:
            last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
            if last >= arr.size:
                raise pickle.UnpicklingError(f"tensor of size {self.size}, stride {self.stride}, offset {self.offset} "
                                             f"reaches element {last} of storage {st.key!r}, which has {arr.size}")
            base = arr[self.offset:]
            strides = tuple(s * arr.itemsize for s in self.stride)
            out = np.lib.stride_tricks.as_strided(base, shape=self.size, strides=strides, writeable=False).copy()
        if st.stype.dtype == "bf16":
            return bf16_to_float32(out)
        return out.astype(out.dtype.newbyteorder("="), copy=False)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ---- the stand-ins for torch's rebuild functions ---------------------------------------
def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any) -> TensorRef:
    return TensorRef(storage, offset, size, stride)


def _rebuild_tensor_v2(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> TensorRef:
    return TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data: Any, requires_grad: Any = True, backward_hooks: Any = None, state: Any = None) -> Any:
    if not isinstance(data, TensorRef):
        raise pickle.UnpicklingError(f"parameter rebuild got a {type(data).__name__}, not a tensor")
    return data


ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}
ALLOWED.update({("torch", name): StorageType(name) for name in STORAGE_DTYPES})
ALLOWED[("torch.storage", "UntypedStorage")] = StorageType("UntypedStorage")


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves globals only through ALLOWED; persistent ids become Storage placeholders."""

    def __init__(self, file: Any, path: str, storage_factory: Callable[[tuple], Storage] | None = None):
        super().__init__(file)
        self.path = path
        self.storage_factory = storage_factory

    def find_class(self, module: str, name: str) -> Any:
        fn = ALLOWED.get((module, name))
        if fn is None:
            raise WeightsError(f"{self.path}: refusing to load: the pickle asks for the global {module}.{name}, "
                               f"which is not a tensor, storage or plain container (a checkpoint never needs it; "
                               f"loading it could run code)")
        return fn

    def persistent_load(self, pid: Any) -> Any:
        if self.storage_factory is None or not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        return self.storage_factory(pid)


def _check_pid(pid: tuple) -> tuple[StorageType, str, int]:
    if len(pid) not in (5, 6) or not isinstance(pid[1], StorageType) or not isinstance(pid[2], str) \
            or not _is_int(pid[4]) or pid[4] < 0:
        raise pickle.UnpicklingError(f"malformed storage id {pid!r}")
    if len(pid) == 6 and pid[5] is not None:
        raise pickle.UnpicklingError("storage views of the pre-1.0 legacy format are not supported")
    return pid[1], pid[2], pid[4]


def _finish(obj: Any, depth: int = 0) -> Any:
    """Replace TensorRefs by arrays throughout plain containers; refuse anything else."""
    if depth > 100:
        raise pickle.UnpicklingError("containers nested more than 100 deep")
    if isinstance(obj, TensorRef):
        return obj.materialize()
    if isinstance(obj, OrderedDict):
        return OrderedDict((k, _finish(v, depth + 1)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _finish(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_finish(v, depth + 1) for v in obj)
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, set, frozenset)):
        return obj
    raise pickle.UnpicklingError(f"unexpected {type(obj).__name__} object in the checkpoint")


def read_torch(path: PathLike) -> Any:
    """The object torch.save wrote (usually a state dict), tensors as NumPy arrays."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        if head.startswith(b"PK\x03\x04"):
            return _read_zip(path)
        if head[:1] == b"\x80":
            with open(path, "rb") as f:
                return _read_legacy(f, path)
        raise WeightsError(f"{path}: not a PyTorch checkpoint (starts with {head!r}, expected a zip or a pickle)")
    except WeightsError:
        raise
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, struct.error, ValueError, KeyError, TypeError,
            AttributeError, IndexError, MemoryError, RecursionError, UnicodeDecodeError, OverflowError) as e:
        raise WeightsError(f"{path}: corrupt or truncated PyTorch checkpoint: {type(e).__name__}: {e}") from None


def _read_zip(path: str) -> Any:
    with zipfile.ZipFile(path) as zf:
        pkls = [n for n in zf.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise WeightsError(f"{path}: a torch.save zip has one <name>/data.pkl; found {pkls}")
        prefix = pkls[0][:-len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in zf.namelist():
            byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise WeightsError(f"{path}: unknown byteorder {byteorder!r}")
        storages: dict[str, Storage] = {}

        def load_storage(pid: tuple) -> Storage:
            stype, key, numel = _check_pid(pid)
            if key in storages:
                st = storages[key]
                if st.stype.dtype != stype.dtype:
                    raise pickle.UnpicklingError(f"storage {key!r} used with two dtypes")
                return st
            name = f"{prefix}data/{key}"
            try:
                info = zf.getinfo(name)
            except KeyError:
                raise WeightsError(f"{path}: the pickle refers to storage {key!r} but the zip has no {name}") from None
            dt = stype.np_dtype(byteorder)
            nbytes = info.file_size
            if stype.name == "UntypedStorage":
                numel = nbytes  # counted in bytes
            if nbytes != numel * dt.itemsize:
                raise WeightsError(f"{path}: storage {name} holds {nbytes} bytes; {numel} elements of "
                                   f"{stype.name} need {numel * dt.itemsize}")
            st = Storage(key, stype, numel)
            st.array = np.frombuffer(zf.read(name), dtype=dt)  # zf.read checks the CRC
            storages[key] = st
            return st

        data = zf.read(pkls[0])
        obj = RestrictedUnpickler(io.BytesIO(data), path, load_storage).load()
        return _finish(obj)


def _read_legacy(f: Any, path: str) -> Any:
    def plain() -> Any:
        return RestrictedUnpickler(f, path).load()

    if plain() != LEGACY_MAGIC:
        raise WeightsError(f"{path}: not a PyTorch checkpoint (bad magic number)")
    version = plain()
    if version != LEGACY_PROTOCOL:
        raise WeightsError(f"{path}: legacy protocol version {version!r} is not supported")
    sys_info = plain()
    little = not isinstance(sys_info, dict) or sys_info.get("little_endian", True)
    byteorder = "little" if little else "big"
    storages: dict[str, Storage] = {}

    def load_storage(pid: tuple) -> Storage:
        stype, key, numel = _check_pid(pid)
        if key not in storages:
            storages[key] = Storage(key, stype, numel)
        return storages[key]

    obj = RestrictedUnpickler(f, path, load_storage).load()
    keys = RestrictedUnpickler(f, path).load()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise WeightsError(f"{path}: malformed storage key list")
    for key in keys:
        head = f.read(8)
        if len(head) != 8:
            raise WeightsError(f"{path}: file ends before storage {key!r} (truncated?)")
        (numel,) = struct.unpack("<q" if little else ">q", head)
        st = storages.get(key)
        if st is None:
            raise WeightsError(f"{path}: storage {key!r} is listed but no tensor uses it")
        dt = st.stype.np_dtype(byteorder)
        if numel != st.numel or numel < 0:
            raise WeightsError(f"{path}: storage {key!r} has {numel} elements, the pickle said {st.numel}")
        raw = f.read(numel * dt.itemsize)
        if len(raw) != numel * dt.itemsize:
            raise WeightsError(f"{path}: storage {key!r} is cut short: {len(raw)} of {numel * dt.itemsize} bytes "
                               f"(truncated?)")
        st.array = np.frombuffer(raw, dtype=dt)
    missing = [k for k, s in storages.items() if s.array is None]
    if missing:
        raise WeightsError(f"{path}: storages {missing} are used but not stored")
    return _finish(obj)
