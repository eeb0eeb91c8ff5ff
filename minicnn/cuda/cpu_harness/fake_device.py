"""A stand-in for CuPy on the CPU, so minicnn's GPU bodies can be EXECUTED without a GPU (a test tool).

    from minicnn.cuda.cpu_harness.fake_device import fake_device
    with fake_device() as fd:                 # 'cuda' now means this module
        x = minicnn.tensor(a).to("cuda")      # a FakeDeviceArray
        y = model.to("cuda")(x)               # runs forward_gpu / backward_gpu
        fd.launched                           # Counter of kernel entry points that ran

What is emulated, exactly:
- arrays: `FakeDeviceArray`, a NumPy ndarray subclass that `minicnn.backend.get_array_module`
  recognises as a GPU array. Like CuPy it refuses to mix with host arrays: a ufunc or a NumPy
  function that gets a FakeDeviceArray and a plain ndarray (of any shape) raises TypeError, and
  reductions return 0-d arrays, not host scalars. What it cannot refuse: `np.asarray(fake)`
  silently gives a host array (CuPy raises), so code that calls NumPy on device data directly
  is caught only by the mixing checks downstream, not at that call.
- the array functions (`zeros`, `matmul`, `copyto`, `lib.stride_tricks.as_strided`, ...): NumPy's,
  with array results re-wrapped; `asarray` copies host data in and `asnumpy` copies it out, as a
  host <-> device copy does. No streams, pinned memory or asynchrony: `cuda.Stream` is a no-op.
- the random generator: `random.default_rng(seed)` is NumPy's PCG64 (CuPy's default is XORWOW),
  so dropout masks differ from a real GPU's in value but not in law.
- the kernels: `kernel_module(name)` returns `CpuModule(name)`, the unmodified kernels/<name>.cu
  compiled by g++ and run by the fiber harness (guard zones, NaN-poisoned shared memory, grids
  capped so blocks loop), driven by the same `minicnn.cuda.launches` functions as on the GPU.
  Launch shapes are therefore the GPU's; only `grid_cap` differs (3 here, SMs x 32 on a GPU).
- cuBLAS: `matmul` is NumPy's (OpenBLAS), so the GEMM half of a convolution is not the GPU's code.
What it cannot show: speed, races between blocks, TF32/FMA rounding, denormal flushing (see
kernels/README.md, "What a CPU run cannot show").
"""
from __future__ import annotations

import contextlib
import threading
import types
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np

from .runner import CpuModule


class FakeDeviceArray(np.ndarray):
    """A NumPy array that minicnn treats as living on the (fake) GPU."""

    def __array_wrap__(self, arr: Any, context: Any = None, return_scalar: bool = False) -> Any:
        return arr.view(type(self))      # never a host scalar: CuPy reductions give 0-d arrays

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kw: Any) -> Any:
        outs = kw.get("out") or ()
        if getattr(_depth, "n", 0) == 0:
            _refuse_host(ufunc.__name__, inputs + tuple(outs))
        args = [_plain(a) for a in inputs]
        if outs:
            kw["out"] = tuple(_plain(o) for o in outs)
        res = getattr(ufunc, method)(*args, **kw)
        if method == "at":
            return None
        if outs:
            return outs[0] if len(outs) == 1 else tuple(outs)
        return tuple(_wrap(r) for r in res) if isinstance(res, tuple) else _wrap(res)

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        with _outermost() as outer:
            if outer:  # NumPy's own implementations call other NumPy functions with host temporaries
                _refuse_host(func.__name__, _flatten(args) + _flatten(tuple(kwargs.values())))
            return _wrap(super().__array_function__(func, types_, args, kwargs))


_depth = threading.local()


@contextlib.contextmanager
def _outermost() -> Iterator[bool]:
    """True for a call made by minicnn's code, False inside NumPy's implementation of another call."""
    d = getattr(_depth, "n", 0)
    _depth.n = d + 1
    try:
        yield d == 0
    finally:
        _depth.n = d


def _plain(a: Any) -> Any:
    return a.view(np.ndarray) if isinstance(a, FakeDeviceArray) else a


def _flatten(items: tuple) -> tuple:
    out: list[Any] = []
    for a in items:
        if isinstance(a, (list, tuple)):
            out.extend(_flatten(tuple(a)))
        else:
            out.append(a)
    return tuple(out)


def _refuse_host(what: str, items: tuple) -> None:
    """CuPy's rule: device arrays do not mix with host ndarrays (NumPy scalars and Python numbers are fine)."""
    if any(isinstance(a, FakeDeviceArray) for a in items):
        for a in items:
            if isinstance(a, np.ndarray) and not isinstance(a, FakeDeviceArray):
                raise TypeError(f"fake device: {what} got a host numpy.ndarray {a.shape} {a.dtype} together with "
                                "device arrays (CuPy refuses this too: move it with xp.asarray first)")


def _wrap(r: Any) -> Any:
    if isinstance(r, np.ndarray) and not isinstance(r, FakeDeviceArray):
        return r.view(FakeDeviceArray)
    if isinstance(r, np.generic):            # CuPy reductions give 0-d device arrays, not host scalars
        return np.asarray(r).view(FakeDeviceArray)
    if isinstance(r, tuple):
        return tuple(_wrap(v) for v in r)
    if isinstance(r, list):
        return [_wrap(v) for v in r]
    return r


def _device_function(fn: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        with _outermost() as outer:
            if outer:
                _refuse_host(getattr(fn, "__name__", "function"), _flatten(args) + _flatten(tuple(kwargs.values())))
            return _wrap(fn(*args, **kwargs))
    call.__name__ = getattr(fn, "__name__", "function")
    return call


class _Generator:
    """cupy.random.Generator's few methods minicnn uses, drawing on the 'device'."""

    def __init__(self, seed: int):
        self._g = np.random.default_rng(seed)

    def random(self, size: Any = None, dtype: Any = np.float64) -> Any:
        return _wrap(np.asarray(self._g.random(size, dtype=dtype)))

    def standard_normal(self, size: Any = None, dtype: Any = np.float64) -> Any:
        return _wrap(np.asarray(self._g.standard_normal(size, dtype=dtype)))

    def uniform(self, low: float = 0.0, high: float = 1.0, size: Any = None, dtype: Any = np.float64) -> Any:
        return _wrap(np.asarray(self._g.uniform(low, high, size)).astype(dtype))


class _NoOpStream:
    def __init__(self, *a: Any, **k: Any) -> None: ...
    def __enter__(self) -> _NoOpStream: return self
    def __exit__(self, *a: Any) -> None: return None
    def synchronize(self) -> None: ...
    def use(self) -> _NoOpStream: return self


class _Device:
    id = 0

    def __init__(self, i: int = 0) -> None: ...
    def __enter__(self) -> _Device: return self
    def __exit__(self, *a: Any) -> None: return None
    def synchronize(self) -> None: ...


class FakeDevice(types.ModuleType):
    """The module object itself: attribute access falls through to NumPy, with results on the 'device'."""

    ndarray = FakeDeviceArray

    def __init__(self, grid_cap: int = 3, shuffle: bool = False) -> None:
        super().__init__("minicnn_fake_cupy")
        self.grid_cap, self.shuffle = grid_cap, shuffle
        self.launched: Counter = Counter()
        self._modules: dict[str, Any] = {}
        self.random = types.SimpleNamespace(default_rng=lambda seed=None: _Generator(seed))
        self.lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(
            as_strided=lambda x, shape=None, strides=None: _wrap(np.lib.stride_tricks.as_strided(
                _plain(x), shape=shape, strides=strides))))
        self.cuda = types.SimpleNamespace(
            Stream=_NoOpStream, Device=_Device,
            runtime=types.SimpleNamespace(getDeviceCount=lambda: 1, getDevice=lambda: 0),
            get_current_stream=lambda: _NoOpStream())

    def __getattr__(self, name: str) -> Any:
        attr = getattr(np, name)
        if isinstance(attr, type) or not callable(attr):
            return attr          # dtypes (xp.float32), constants
        return _device_function(attr)

    # ---- host <-> device copies --------------------------------------------------------------
    def asarray(self, a: Any, dtype: Any = None) -> Any:
        """Host data is copied in (a device array comes back unchanged when no cast is needed)."""
        if isinstance(a, FakeDeviceArray):
            return a if dtype is None or a.dtype == dtype else a.astype(dtype)
        out: FakeDeviceArray = np.array(a, dtype=dtype, copy=True).view(FakeDeviceArray)
        return out

    array = asarray

    def ascontiguousarray(self, a: Any, dtype: Any = None) -> FakeDeviceArray:
        return _wrap(np.ascontiguousarray(self.asarray(a, dtype)))

    def asnumpy(self, a: Any) -> np.ndarray:
        """A host copy (what cupy.asnumpy does)."""
        return np.array(_plain(a), copy=True)

    def get_array_module(self, *xs: Any) -> Any:
        return self if any(isinstance(x, FakeDeviceArray) for x in xs) else np

    # ---- kernels ----------------------------------------------------------------------------
    def kernel_module(self, name: str) -> Any:
        """kernels/<name>.cu on the CPU harness, counting the entry points launched."""
        if name not in self._modules:
            self._modules[name] = _CountingModule(CpuModule(name, grid_cap=self.grid_cap, shuffle=self.shuffle,
                                                            seed=11), self.launched)
        return self._modules[name]


class _CountingModule:
    def __init__(self, mod: CpuModule, counter: Counter):
        self.mod, self.counter, self.grid_cap = mod, counter, mod.grid_cap

    def launch(self, kernel: str, grid: Any, block: Any, args: Any) -> None:
        for a in args:
            if isinstance(a, np.ndarray) and not isinstance(a, FakeDeviceArray):
                raise TypeError(f"fake device: kernel {kernel} got a host array {a.shape} {a.dtype}")
        self.counter[kernel] += 1
        self.mod.launch(kernel, grid, block, args)


@contextlib.contextmanager
def fake_device(grid_cap: int = 3, shuffle: bool = False) -> Iterator[FakeDevice]:
    """Within the block, 'cuda' is a FakeDevice (NumPy + the CPU kernel harness); restores the previous one after."""
    from ... import backend
    from ... import random as mrandom
    fd = FakeDevice(grid_cap, shuffle)
    old, old_rng = backend.use_gpu_module(fd), mrandom._gpu_rng
    mrandom._gpu_rng = None                  # the GPU generator is created from the fake module
    try:
        yield fd
    finally:
        backend.use_gpu_module(old)
        mrandom._gpu_rng = old_rng
