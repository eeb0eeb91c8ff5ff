"""NVRTC through ctypes: compile a kernel source to a cubin WITHOUT a GPU, and read ptxas' resource report.

NVRTC is the run-time compiler CuPy's RawModule uses; it needs no driver or device, so the tests
compile every kernel exactly as the loader will, for several architectures, on any machine that
has libnvrtc (the `nvidia-cuda-nvrtc-cu12` wheel in the `test` extra provides it).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path


class NvrtcError(RuntimeError):
    """Compilation failed (the message holds NVRTC's log) or libnvrtc is missing."""


def _candidates() -> list[str]:
    out: list[str] = []
    try:                                                   # the PyPI wheel nvidia-cuda-nvrtc-cu12
        import nvidia.cuda_nvrtc as pkg  # type: ignore[import-not-found,import-untyped,unused-ignore]
        for base in getattr(pkg, "__path__", []):
            out += sorted(glob.glob(os.path.join(base, "lib", "libnvrtc.so*")))
            out += sorted(glob.glob(os.path.join(base, "bin", "nvrtc64*.dll")))
    except ImportError:
        pass
    found = ctypes.util.find_library("nvrtc")
    if found:
        out.append(found)
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home:
            out += sorted(glob.glob(os.path.join(home, "lib64", "libnvrtc.so*")))
    return [p for p in out if "alt" not in os.path.basename(p) and "builtins" not in os.path.basename(p)]


@cache
def library() -> ctypes.CDLL:
    """The first libnvrtc that loads; NvrtcError naming the places tried otherwise."""
    tried = _candidates()
    for path in tried:
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    raise NvrtcError(f"libnvrtc not found (tried {tried or 'nothing'}); pip install nvidia-cuda-nvrtc-cu12")


def available() -> bool:
    """True when a libnvrtc can be loaded."""
    try:
        library()
        return True
    except NvrtcError:
        return False


def version() -> tuple[int, int]:
    """NVRTC's (major, minor)."""
    lib = library()
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    return major.value, minor.value


def _check(rc: int, what: str) -> None:
    if rc != 0:
        lib = library()
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        raise NvrtcError(f"{what}: {lib.nvrtcGetErrorString(rc).decode()}")


def compile_cubin(source: str, name: str, options: tuple[str, ...]) -> tuple[bytes, str]:
    """(cubin, log) of `source` compiled with `options` (which must include -arch=sm_XX for a cubin)."""
    lib = library()
    prog = ctypes.c_void_p()
    _check(lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None), f"{name}: create")
    try:
        opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
        rc = lib.nvrtcCompileProgram(prog, len(options), opts)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        buf = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, buf)
        log = buf.value.decode(errors="replace")
        if rc != 0:
            raise NvrtcError(f"{name}: NVRTC compilation failed with {options}:\n{log}")
        lib.nvrtcGetCUBINSize(prog, ctypes.byref(size))
        cubin = ctypes.create_string_buffer(size.value)
        _check(lib.nvrtcGetCUBIN(prog, cubin), f"{name}: get cubin")
        return cubin.raw, log
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


@dataclass(frozen=True)
class Resources:
    """ptxas' report for one entry point."""

    kernel: str
    arch: str
    registers: int
    shared_bytes: int
    spill_stores: int
    spill_loads: int
    stack_bytes: int


_ENTRY = re.compile(r"Compiling entry function '(\w+)' for '(sm_\d+)'")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")


def parse_resources(log: str) -> dict[str, Resources]:
    """Per-kernel resource usage from a `-Xptxas -v` (nvcc) or `--ptxas-options=-v` (NVRTC) log."""
    out: dict[str, Resources] = {}
    cur: dict | None = None

    def flush() -> None:
        if cur is not None and "registers" in cur:
            out[cur["kernel"]] = Resources(cur["kernel"], cur["arch"], cur["registers"], cur.get("smem", 0),
                                           cur.get("ss", 0), cur.get("sl", 0), cur.get("stack", 0))

    for line in log.splitlines():
        if m := _ENTRY.search(line):
            flush()
            cur = {"kernel": m.group(1), "arch": m.group(2)}
        elif cur is not None and (m := _FRAME.search(line)):
            cur.update(stack=int(m.group(1)), ss=int(m.group(2)), sl=int(m.group(3)))
        elif cur is not None and (m := _USED.search(line)):
            cur["registers"] = int(m.group(1))
            if s := _SMEM.search(line):
                cur["smem"] = int(s.group(1))
    flush()
    return out


def launch_bounds(source: str) -> dict[str, int]:
    """Threads per block each `extern "C"` entry declares with __launch_bounds__(n)."""
    pat = re.compile(r'extern\s+"C"\s+__global__\s+void\s+__launch_bounds__\s*\(\s*(\d+)[^)]*\)\s*(\w+)')
    return {m.group(2): int(m.group(1)) for m in pat.finditer(source)}


def nvcc_path() -> Path | None:
    """nvcc on PATH or under $CUDA_HOME / /usr/local/cuda, if any."""
    import shutil
    found = shutil.which("nvcc")
    if found:
        return Path(found)
    for home in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if home and (Path(home) / "bin" / "nvcc").exists():
            return Path(home) / "bin" / "nvcc"
    return None


REGISTERS_PER_BLOCK = 65536
STATIC_SHARED_LIMIT = 48 * 1024


def resource_problems(res: Resources, threads: int) -> list[str]:
    """Why `res` is not acceptable for blocks of `threads` threads (empty when it is)."""
    out = []
    if res.spill_stores or res.spill_loads:
        out.append(f"{res.kernel} ({res.arch}): spills {res.spill_stores} B stored / {res.spill_loads} B loaded")
    if res.registers * threads > REGISTERS_PER_BLOCK:
        out.append(f"{res.kernel} ({res.arch}): {res.registers} registers x {threads} threads > {REGISTERS_PER_BLOCK}")
    if res.shared_bytes > STATIC_SHARED_LIMIT:
        out.append(f"{res.kernel} ({res.arch}): {res.shared_bytes} B static shared memory > {STATIC_SHARED_LIMIT}")
    return out
