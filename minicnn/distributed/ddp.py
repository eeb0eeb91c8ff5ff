"""`DistributedDataParallel`: one model replica per rank, gradients averaged during backward.

At construction rank 0's parameters and buffers are broadcast, so every replica starts equal.
Gradients are grouped into buckets of about `bucket_mb` MB, filled in the reverse order of
`parameters()` (roughly the order backward produces them). When the last gradient of a bucket
is final, the bucket is copied into one flat array and a non-blocking all-reduce starts, while
backward goes on with earlier layers; at the end of backward every request is waited for and
the averaged gradients are written back. Identical gradients and identical starting states
keep the optimizer states identical on every rank without communicating them.

Buckets are started strictly in order, so every rank issues the same sequence of collectives
even if gradients become final in a different order (MPI requires the same order everywhere).
"""
from __future__ import annotations

import time
import weakref
from typing import Any

import numpy as np

from .. import autograd
from ..autograd import Tensor
from ..backend import get_array_module
from ..nn import Module
from .comm import Communicator, Request, world
from .nccl import comm_for


class _Bucket:
    """Parameters whose gradients travel together in one flat array."""

    def __init__(self, params: list, dtype: Any):
        self.params, self.dtype = params, dtype
        self.offsets = np.cumsum([0] + [p.size for p in params]).tolist()
        self.pending = len(params)
        self.flat: Any = None
        self.request: Request | None = None
        self.launched = False

    @property
    def nbytes(self) -> int:
        return self.offsets[-1] * np.dtype(self.dtype).itemsize


class _WeakHook:
    def __init__(self, owner: DistributedDataParallel):
        self.ref = weakref.ref(owner)

    def leaf_ready(self, t: Tensor) -> None:
        owner = self.ref()
        if owner is not None:
            owner.leaf_ready(t)

    def backward_done(self) -> None:
        owner = self.ref()
        if owner is not None:
            owner.backward_done()


class DistributedDataParallel(Module):
    """Wrap `module` for data-parallel training; call it like the module.

    `state_dict()`/`load_state_dict()` are the wrapped module's (checkpoints stay
    interchangeable with single-process runs). find_unused_parameters=True costs one small
    extra all-reduce per step so that a parameter no rank used keeps grad None (else its
    gradient becomes zeros). broadcast_buffers re-sends rank 0's buffers (batch-norm running
    statistics) before each training forward, as the statistics of plain BatchNorm drift apart.
    """

    def __init__(self, module: Module, comm: Communicator | None = None, bucket_mb: float = 4.0,
                 broadcast_buffers: bool = True, find_unused_parameters: bool = False):
        super().__init__()
        self.module = module
        object.__setattr__(self, "comm", comm if comm is not None else world())
        self.bucket_bytes = int(bucket_mb * (1 << 20))
        self.broadcast_buffers, self.find_unused = broadcast_buffers, find_unused_parameters
        self.comm_seconds = 0.0      # time spent inside communication calls (started + waited)
        self.sync_state()
        self._build_buckets()
        # a weak hook: a wrapper that is dropped stops reducing instead of living on in the hook list
        object.__setattr__(self, "_remove_hook", autograd.add_backward_hook(_WeakHook(self)))
        weakref.finalize(self, self._remove_hook)

    # ---- setup ------------------------------------------------------------------------------
    def _build_buckets(self) -> None:
        params = [p for p in self.module.parameters() if p.requires_grad][::-1]
        buckets: list[_Bucket] = []
        cur: list = []
        size = 0
        for p in params:
            nb = p.data.nbytes
            if cur and (size + nb > self.bucket_bytes or p.data.dtype != cur[0].data.dtype):
                buckets.append(_Bucket(cur, cur[0].data.dtype))
                cur, size = [], 0
            cur.append(p)
            size += nb
        if cur:
            buckets.append(_Bucket(cur, cur[0].data.dtype))
        object.__setattr__(self, "buckets", buckets)
        object.__setattr__(self, "_where", {id(p): (b, i) for b in buckets for i, p in enumerate(b.params)})
        object.__setattr__(self, "_params", params)
        self._next = 0               # the next bucket to start (they start in order)
        self._active = False         # some parameter of ours got a gradient in this backward
        self._ready: set[int] = set()

    def sync_state(self) -> None:
        """Copy rank 0's parameters and buffers to every rank (at start and after loading)."""
        c = self.comm
        if c.size == 1:
            return
        for t in list(self.module.parameters()) + [b for _, b in self.module.named_buffers()]:
            data = t.data if t.data.flags.c_contiguous else t.data.copy()
            comm_for(data, c).bcast_(data, root=0)
            t.data = data

    def _sync_buffers(self) -> None:
        for _, b in self.module.named_buffers():
            comm_for(b.data, self.comm).bcast_(b.data, root=0)

    def remove_hooks(self) -> None:
        """Stop reducing gradients (the wrapper is then an ordinary Module)."""
        self._remove_hook()

    # ---- forward ----------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.training and self.broadcast_buffers and self.comm.size > 1:
            self._sync_buffers()
        return self.module(*args, **kwargs)

    # ---- backward hooks (called by Tensor.backward) -------------------------------------------
    def leaf_ready(self, t: Tensor) -> None:
        where = self._where.get(id(t))
        if where is None or self.comm.size == 1 or id(t) in self._ready:
            return
        self._ready.add(id(t))
        self._active = True
        bucket, _ = where
        bucket.pending -= 1
        self._start_ready()

    def _start_ready(self) -> None:
        while self._next < len(self.buckets) and self.buckets[self._next].pending == 0:
            self._start(self.buckets[self._next])
            self._next += 1
        for b in self.buckets[:self._next]:  # MPI progresses requests only inside MPI calls: poke them
            if b.request is not None and b.request.test():
                break

    def _start(self, b: _Bucket) -> None:
        t0 = time.perf_counter()
        xp = get_array_module(b.params[0].data)
        flat = xp.empty(b.offsets[-1], dtype=b.dtype)
        for p, a, z in zip(b.params, b.offsets, b.offsets[1:]):
            if p.grad is None:
                flat[a:z] = 0
            else:
                flat[a:z] = p.grad.data.reshape(-1)
        b.flat = flat
        b.request = comm_for(flat, self.comm).iallreduce_(flat)
        b.launched = True
        self.comm_seconds += time.perf_counter() - t0

    def backward_done(self) -> None:
        if not self._active:
            return  # a backward through some other graph: nothing of ours to reduce
        t0 = time.perf_counter()
        used = None
        if self.find_unused:
            mask = np.array([id(p) in self._ready for p in self._params], dtype=np.float64)
            used = self.comm.allreduce_(mask)
        for b in self.buckets:
            b.pending = 0
        self._start_ready()
        inv = 1.0 / self.comm.size
        k = 0
        for b in self.buckets:
            assert b.request is not None
            b.request.wait()
            for p, a, z in zip(b.params, b.offsets, b.offsets[1:]):
                if used is not None and used[k] == 0:
                    p.grad = None
                else:
                    g = b.flat[a:z].reshape(p.shape)   # a view of the bucket: no copy
                    g *= b.dtype.type(inv)
                    p.grad = Tensor(g)
                k += 1
            b.flat, b.request, b.launched = None, None, False
            b.pending = len(b.params)
        self._next, self._active = 0, False
        self._ready.clear()
        self.comm_seconds += time.perf_counter() - t0

    def __getattr__(self, name: str) -> Any:
        # only reached for names the wrapper lacks: the wrapped model's own attributes show through
        mods = self.__dict__.get("_modules")
        if mods is not None and mods.get("module") is not None:
            return getattr(mods["module"], name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    # ---- checkpoints stay those of the wrapped module -----------------------------------------
    def state_dict(self) -> Any:
        return self.module.state_dict()

    def load_state_dict(self, state: dict, strict: bool = True) -> tuple[list[str], list[str]]:
        return self.module.load_state_dict(state, strict)

    def extra_repr(self) -> str:
        return f"rank={self.comm.rank}, world={self.comm.size}, buckets={len(self.buckets)}"
