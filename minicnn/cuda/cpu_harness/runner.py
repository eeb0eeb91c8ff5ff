"""ctypes front end of the CPU harness: the same `launch()` as the GPU module, with guard zones."""
from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..signature import Signature, convert_args
from ..sources import source_path
from .build import build_library, launcher_name

GUARD = 4096         # bytes of poison (0xFF: NaN for floats, -1 for ints) on each side of every buffer
_LIBS: dict[Path, ctypes.CDLL] = {}

_CTYPES = {np.dtype(np.float32): ctypes.c_float, np.dtype(np.float64): ctypes.c_double,
           np.dtype(np.int32): ctypes.c_int32, np.dtype(np.uint32): ctypes.c_uint32,
           np.dtype(np.int64): ctypes.c_int64, np.dtype(np.uint64): ctypes.c_uint64}


class HarnessError(RuntimeError):
    """A launch failed inside the harness (divergent barrier, bad launch shape)."""


class OutOfBoundsWrite(HarnessError):
    """A kernel wrote into the guard zone around one of its buffers."""


def _dims(d: int | Sequence[int]) -> tuple[int, int, int]:
    t = (d,) if isinstance(d, int) else tuple(d)
    return tuple(int(v) for v in t) + (1,) * (3 - len(t))  # type: ignore[return-value]


class CpuModule:
    """One kernels/*.cu file built for the CPU. `grid_cap` caps 1-D grids in the launch code so that
    grid-stride loops really loop; `shuffle` runs blocks and threads in a seeded random order."""

    def __init__(self, name_or_path: str | Path, grid_cap: int = 3, shuffle: bool = False, seed: int = 0):
        p = Path(name_or_path)
        self.path = p if p.suffix == ".cu" else source_path(str(name_or_path))
        self.grid_cap, self.shuffle, self.seed = grid_cap, shuffle, seed
        so, self.signatures = build_library(self.path)
        if so not in _LIBS:
            _LIBS[so] = ctypes.CDLL(str(so))
        self._lib = _LIBS[so]
        self._lib.cucpu_last_error.restype = ctypes.c_char_p
        self.launches = 0

    def signature(self, kernel: str) -> Signature:
        if kernel not in self.signatures:
            raise KeyError(f"{self.path.name}: no kernel {kernel!r}; has {sorted(self.signatures)}")
        return self.signatures[kernel]

    def launch(self, kernel: str, grid: int | Sequence[int], block: int | Sequence[int],
               args: Sequence[Any]) -> None:
        """Run `kernel` over `grid` x `block`; NumPy output arrays are updated in place."""
        sig = self.signature(kernel)
        vals = convert_args(sig, args, lambda a: isinstance(a, np.ndarray))
        keep: list[Any] = []                       # ctypes objects that must outlive the call
        guarded: list[tuple[str, np.ndarray, np.ndarray]] = []
        for p, v in zip(sig.params, vals):
            if p.pointer:
                nbytes = v.nbytes
                buf = np.full(nbytes + 2 * GUARD, 0xFF, dtype=np.uint8)
                buf[GUARD:GUARD + nbytes] = v.reshape(-1).view(np.uint8)
                guarded.append((p.name, v, buf))
                keep.append(ctypes.c_void_p(buf.ctypes.data + GUARD))
            else:
                keep.append(_CTYPES[p.dtype](v.item()))
        argv = (ctypes.c_void_p * max(1, len(keep)))(*[ctypes.addressof(k) for k in keep])
        g, b = _dims(grid), _dims(block)
        fn = getattr(self._lib, launcher_name(kernel))
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_int, ctypes.c_ulonglong, ctypes.c_void_p]
        rc = fn(*g, *b, int(self.shuffle), self.seed + self.launches, argv)
        self.launches += 1
        if rc != 0:
            raise HarnessError(f"{self.path.name}:{kernel}: {self._lib.cucpu_last_error().decode()}")
        for name, arr, buf in guarded:
            nbytes = arr.nbytes
            for side, zone, base in (("before", buf[:GUARD], -GUARD), ("after", buf[GUARD + nbytes:], nbytes)):
                bad = np.flatnonzero(zone != 0xFF)
                if bad.size:
                    raise OutOfBoundsWrite(f"{self.path.name}:{kernel}: out-of-bounds write {side} argument "
                                           f"{name!r} (shape {arr.shape}, {arr.dtype}) at byte offset {base + bad[0]}")
            flat = buf[GUARD:GUARD + nbytes].view(arr.dtype)
            arr.reshape(-1)[...] = flat        # arr is C-contiguous, so reshape is a view
