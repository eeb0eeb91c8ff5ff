"""NCCL collectives for CuPy arrays, one process per GPU (`cupy.cuda.nccl`).

UNTESTED WITHOUT A GPU: written against CuPy's documented NCCL API so that the data-parallel
code is the same on GPUs, but no machine this module was developed on had one; its tests are
marked `gpu` and skip elsewhere. The NCCL unique id is handed from rank 0 to the others over
MPI, so GPU jobs still start with `mpiexec` (or any launcher `init()` understands).
Collectives are queued on one NCCL stream; a request is a CUDA event recorded after the
operation, and `wait()` makes the caller's current stream wait for it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .comm import Communicator, MPICommunicator, Request


class _EventRequest(Request):
    def __init__(self, event: Any):
        self.event = event

    def wait(self) -> None:
        import cupy
        cupy.cuda.get_current_stream().wait_event(self.event)

    def test(self) -> bool:
        return bool(self.event.done)


class NCCLCommunicator(Communicator):
    """Sum/broadcast/gather of CuPy arrays over NCCL; control data still travels over `host` (MPI)."""

    backend = "nccl"

    def __init__(self, host: MPICommunicator):
        super().__init__()
        import cupy
        from cupy.cuda import nccl
        self.cp, self.nccl, self.host = cupy, nccl, host
        self.rank, self.size = host.rank, host.size
        self.local_rank, self.local_size = host.local_rank, host.local_size
        cupy.cuda.Device(host.local_rank % cupy.cuda.runtime.getDeviceCount()).use()  # one GPU per local rank
        uid = nccl.get_unique_id() if host.rank == 0 else None
        uid = host.bcast_object(uid, root=0)
        self.comm = nccl.NcclCommunicator(host.size, uid, host.rank)
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self._types = {np.dtype(np.float16): nccl.NCCL_FLOAT16, np.dtype(np.float32): nccl.NCCL_FLOAT32,
                       np.dtype(np.float64): nccl.NCCL_FLOAT64, np.dtype(np.int32): nccl.NCCL_INT32,
                       np.dtype(np.int64): nccl.NCCL_INT64}

    def _type(self, buf: Any) -> int:
        if not (isinstance(buf, self.cp.ndarray) and buf.flags.c_contiguous):
            raise TypeError(f"NCCLCommunicator: needs a C-contiguous CuPy array, got {type(buf).__name__}")
        try:
            return self._types[np.dtype(buf.dtype)]
        except KeyError:
            raise TypeError(f"NCCLCommunicator: dtype {buf.dtype} is not supported") from None

    def _after_current(self) -> None:
        # the buffer was written on the caller's stream: NCCL's stream must not start before that
        ev = self.cp.cuda.get_current_stream().record()
        self.stream.wait_event(ev)

    def iallreduce_(self, buf: Any) -> Request:
        t = self._type(buf)
        self._after_current()
        self.comm.allReduce(buf.data.ptr, buf.data.ptr, buf.size, t, self.nccl.NCCL_SUM, self.stream.ptr)
        return _EventRequest(self.stream.record())

    def allreduce_(self, buf: Any) -> Any:
        self.iallreduce_(buf).wait()
        return buf

    def bcast_(self, buf: Any, root: int = 0) -> Any:
        t = self._type(buf)
        self._after_current()
        self.comm.bcast(buf.data.ptr, buf.size, t, root, self.stream.ptr)
        _EventRequest(self.stream.record()).wait()
        return buf

    def allgather(self, a: Any) -> Any:
        a = self.cp.ascontiguousarray(a)
        out = self.cp.empty((self.size,) + a.shape, dtype=a.dtype)
        self._after_current()
        self.comm.allGather(a.data.ptr, out.data.ptr, a.size, self._type(a), self.stream.ptr)
        _EventRequest(self.stream.record()).wait()
        return out

    # control data (Python objects, scalars) and process control stay on MPI
    def allgather_object(self, obj: Any) -> list:
        return self.host.allgather_object(obj)

    def bcast_object(self, obj: Any, root: int = 0) -> Any:
        return self.host.bcast_object(obj, root)

    def allreduce_scalar(self, x: float, op: str = "sum") -> float:
        return self.host.allreduce_scalar(x, op)

    def barrier(self) -> None:
        self.stream.synchronize()
        self.host.barrier()

    def abort(self, code: int = 1) -> None:
        try:
            self.comm.abort()
        finally:
            self.host.abort(code)


_nccl: dict[int, NCCLCommunicator] = {}


def comm_for(array: Any, comm: Communicator) -> Communicator:
    """The communicator for `array`: NCCL for a CuPy array when `comm` is an MPI world, else `comm`."""
    from ..backend import get_array_module
    if get_array_module(array) is np or comm.size == 1:
        return comm
    if not isinstance(comm, MPICommunicator):
        return comm
    key = id(comm)
    if key not in _nccl:
        _nccl[key] = NCCLCommunicator(comm)
    return _nccl[key]
