"""CuPy, imported lazily, and the kernels/*.cu files compiled once per process and device.

Nothing here imports CuPy at module import time: `import minicnn` stays free of CUDA, and the
first call that needs the GPU either succeeds or raises one `CudaUnavailable` that says what is
missing (CuPy, the NVIDIA driver, or a device) and how to fix it.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

from .signature import convert_args
from .sources import read_source, source_path

# What the loader passes to cupy.RawModule (CuPy adds -arch=sm_XX for the current device, its include
# dirs and -ftz=true); the NVRTC tests compile with exactly these plus those additions.
NVRTC_OPTIONS: tuple[str, ...] = ("--std=c++17",)
# Options CuPy itself adds that change code generation (observed with CuPy 13/14).
CUPY_ADDED_OPTIONS: tuple[str, ...] = ("-ftz=true",)
BLOCKS_PER_SM = 32     # grid cap for grid-stride kernels: enough blocks to fill any SM several times

FIX_CUPY = "install the GPU extra: pip install 'minicnn[gpu]' (CuPy for CUDA 12: cupy-cuda12x)"
FIX_DRIVER = "install an NVIDIA driver that supports CUDA 12 (nvidia-smi must list the GPU)"


class CudaUnavailable(RuntimeError):
    """'cuda' was requested but cannot be used here; the message says why and how to fix it."""


def _import_cupy() -> Any:
    if "cupy" in sys.modules and sys.modules["cupy"] is not None:
        return sys.modules["cupy"]
    try:
        return importlib.import_module("cupy")
    except ImportError as e:
        raise CudaUnavailable(f"device 'cuda' needs CuPy, which is not installed ({e}); {FIX_CUPY}") from None
    except Exception as e:  # noqa: BLE001 -- a broken CuPy install (e.g. a wheel for the wrong CUDA version)
        raise CudaUnavailable(f"device 'cuda': importing CuPy failed ({type(e).__name__}: {e}); {FIX_CUPY}") from None


def require() -> Any:
    """The `cupy` module if a CUDA device can be used; CudaUnavailable (CuPy / driver / device) otherwise."""
    cp = _import_cupy()
    try:
        count = int(cp.cuda.runtime.getDeviceCount())
    except Exception as e:  # noqa: BLE001 -- CuPy raises its own types: cudaErrorInsufficientDriver, cudaErrorNoDevice, libcuda missing ...
        text = f"{type(e).__name__}: {e}"
        if "NoDevice" in text or "no CUDA-capable device" in text:
            raise CudaUnavailable(f"device 'cuda': CuPy and the driver are there but no GPU is visible ({text}); "
                                  "check CUDA_VISIBLE_DEVICES and nvidia-smi") from None
        raise CudaUnavailable(f"device 'cuda': CuPy is installed but the NVIDIA driver is missing or too old "
                              f"({text}); {FIX_DRIVER}") from None
    if count < 1:
        raise CudaUnavailable("device 'cuda': CuPy and the driver are there but no GPU is visible; "
                              "check CUDA_VISIBLE_DEVICES and nvidia-smi")
    return cp


def is_available() -> bool:
    """True when CuPy imports, the driver loads and at least one CUDA device is visible."""
    try:
        require()
        return True
    except CudaUnavailable:
        return False


class GpuModule:
    """One kernels/*.cu file as a cupy.RawModule on one device, with the same `launch()` as the CPU harness."""

    def __init__(self, name: str, device_id: int):
        cp = require()
        self.name, self.device_id = name, device_id
        source, self.signatures = read_source(source_path(name))
        with cp.cuda.Device(device_id):
            self._raw = cp.RawModule(code=source, options=NVRTC_OPTIONS)
            sms = int(cp.cuda.Device(device_id).attributes["MultiProcessorCount"])
        self.grid_cap = max(1, sms * BLOCKS_PER_SM)
        self._functions: dict[str, Any] = {}
        self._ndarray = cp.ndarray

    def launch(self, kernel: str, grid: int | Sequence[int], block: int | Sequence[int], args: Sequence[Any]) -> None:
        """Launch `kernel` on the current stream; scalars are converted to the types the kernel declares."""
        if kernel not in self.signatures:
            raise KeyError(f"{self.name}.cu: no kernel {kernel!r}; has {sorted(self.signatures)}")
        vals = convert_args(self.signatures[kernel], args, lambda a: isinstance(a, self._ndarray))
        fn = self._functions.get(kernel)
        if fn is None:
            fn = self._functions[kernel] = self._raw.get_function(kernel)   # compiles the file on first use
        g = (grid,) if isinstance(grid, int) else tuple(grid)
        b = (block,) if isinstance(block, int) else tuple(block)
        fn(g, b, tuple(vals))


_MODULES: dict[tuple[str, int], GpuModule] = {}


def module(name: str, device_id: int | None = None) -> GpuModule:
    """kernels/<name>.cu compiled for `device_id` (default: the current device), once per process."""
    cp = require()
    dev = int(cp.cuda.runtime.getDevice()) if device_id is None else int(device_id)
    key = (name, dev)
    if key not in _MODULES:
        _MODULES[key] = GpuModule(name, dev)
    return _MODULES[key]
