"""Kernel signatures parsed from a .cu source, and argument conversion by declared type.

CuPy passes a Python int as `long long` and a Python float as `double` unless told otherwise, so a
kernel declared `(float* y, int n, float a)` would read garbage; both the GPU loader and the CPU
harness therefore convert every argument to the type the kernel declares, and check array dtypes.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# C type (const, __restrict__ and pointer stripped) -> NumPy dtype
C_TYPES: dict[str, np.dtype] = {
    "float": np.dtype(np.float32),
    "double": np.dtype(np.float64),
    "int": np.dtype(np.int32),
    "unsigned int": np.dtype(np.uint32),
    "long long": np.dtype(np.int64),
    "unsigned long long": np.dtype(np.uint64),
}

_ENTRY = re.compile(r'extern\s+"C"\s+__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+'
                    r'(?:__launch_bounds__\s*\([^)]*\)\s*)?([A-Za-z_]\w*)\s*\(([^)]*)\)')
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True)
class Param:
    """One kernel parameter: `ctype` is the C spelling without the name (used by the CPU harness)."""

    name: str
    ctype: str
    dtype: np.dtype
    pointer: bool
    const: bool


@dataclass(frozen=True)
class Signature:
    name: str
    params: tuple[Param, ...]


def _param(text: str, kernel: str) -> Param:
    m = re.match(r"(.*?)([A-Za-z_]\w*)\s*$", text.strip(), re.DOTALL)
    if not m:
        raise ValueError(f"kernel {kernel}: cannot parse parameter {text.strip()!r}")
    ctype, name = " ".join(m.group(1).split()), m.group(2)
    pointer = "*" in ctype
    words = [w for w in ctype.replace("*", " ").split() if w not in ("const", "__restrict__")]
    base = " ".join(words)
    if base not in C_TYPES or ctype.count("*") > 1:
        raise ValueError(f"kernel {kernel}: parameter {name!r} has unsupported type {ctype!r}; "
                         f"use one of {sorted(C_TYPES)} or a pointer to one")
    const = pointer and ctype.split("*")[0].split().count("const") > 0
    return Param(name, ctype.replace("__restrict__", "").strip(), C_TYPES[base], pointer, const)


def parse_signatures(source: str) -> dict[str, Signature]:
    """Every `extern "C" __global__ void name(...)` entry point in `source`, by name."""
    sigs: dict[str, Signature] = {}
    for m in _ENTRY.finditer(_COMMENTS.sub("", source)):
        name, params = m.group(1), m.group(2).strip()
        parts = [p for p in params.split(",") if p.strip()] if params and params != "void" else []
        sigs[name] = Signature(name, tuple(_param(p, name) for p in parts))
    return sigs


def convert_args(sig: Signature, args: Sequence[Any], is_array: Callable[[Any], bool]) -> list[Any]:
    """Check arrays against pointer parameters and cast scalars to the declared C type (as NumPy scalars)."""
    if len(args) != len(sig.params):
        raise TypeError(f"kernel {sig.name}: expected {len(sig.params)} arguments "
                        f"({', '.join(p.name for p in sig.params)}), got {len(args)}")
    out: list[Any] = []
    for p, a in zip(sig.params, args):
        if p.pointer:
            if not is_array(a):
                raise TypeError(f"kernel {sig.name}: argument {p.name!r} ({p.ctype}) needs an array, "
                                f"got {type(a).__name__}")
            if a.dtype != p.dtype:
                raise TypeError(f"kernel {sig.name}: argument {p.name!r} ({p.ctype}) needs dtype {p.dtype}, "
                                f"got {a.dtype}")
            if not a.flags.c_contiguous:
                raise ValueError(f"kernel {sig.name}: argument {p.name!r} must be C-contiguous (shape {a.shape})")
            out.append(a)
        else:
            if is_array(a) or isinstance(a, (bool, np.bool_)):
                raise TypeError(f"kernel {sig.name}: argument {p.name!r} ({p.ctype}) needs a scalar, "
                                f"got {type(a).__name__}")
            if p.dtype.kind in "iu":
                if int(a) != a:
                    raise TypeError(f"kernel {sig.name}: argument {p.name!r} ({p.ctype}) needs an integer, got {a!r}")
                info = np.iinfo(p.dtype)
                if not info.min <= int(a) <= info.max:
                    raise OverflowError(f"kernel {sig.name}: argument {p.name!r}={a} does not fit {p.ctype}")
                out.append(p.dtype.type(int(a)))
            else:
                out.append(p.dtype.type(a))
    return out
