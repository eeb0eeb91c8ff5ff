"""Communicators: the few collectives data-parallel training needs, over MPI or a single process.

`init()` reads the launcher's environment (mpiexec of MPICH, Open MPI or Intel MPI, or Slurm) to
learn whether this process is one of several; only then is `mpi4py` imported, so a plain
`python train.py` never needs it. Every collective works in place on contiguous NumPy arrays;
CuPy arrays go to the NCCL communicator in `nccl.py` instead (see `comm_for`).
"""
from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Iterator
from typing import Any

import numpy as np

# (rank, size) variables set by common launchers, most specific first
_ENV_KEYS = (
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),   # Open MPI
    ("PMI_RANK", "PMI_SIZE"),                           # MPICH (hydra), Intel MPI
    ("PMIX_RANK", "PMIX_SIZE"),                         # PMIx launchers
    ("SLURM_PROCID", "SLURM_NTASKS"),                   # srun
)


def launcher_env() -> tuple[int, int]:
    """(rank, world size) announced by the launcher's environment; (0, 1) when not launched by one."""
    for rk, sk in _ENV_KEYS:
        if rk in os.environ and sk in os.environ:
            try:
                return int(os.environ[rk]), int(os.environ[sk])
            except ValueError:
                continue
    return 0, 1


class Request:
    """A finished-at-once request (the single-process communicator never waits)."""

    def wait(self) -> None: ...

    def test(self) -> bool:
        return True


class Communicator:
    """One process alone: every collective is the identity. The base of the real communicators."""

    backend = "self"

    def __init__(self) -> None:
        self.rank, self.size = 0, 1
        self.local_rank, self.local_size = 0, 1

    # in-place collectives on contiguous arrays
    def allreduce_(self, buf: Any) -> Any:
        """Sum `buf` over ranks, in place; returns buf."""
        return buf

    def iallreduce_(self, buf: Any) -> Request:
        """Start summing `buf` over ranks in place; the result is there after `.wait()`."""
        return Request()

    def bcast_(self, buf: Any, root: int = 0) -> Any:
        """Overwrite `buf` with root's copy; returns buf."""
        return buf

    def allgather(self, a: np.ndarray) -> np.ndarray:
        """(size, *a.shape): every rank's `a`, by rank (same shape and dtype everywhere)."""
        return np.asarray(a)[None]

    def allgather_object(self, obj: Any) -> list:
        """Every rank's picklable `obj`, by rank (small control data only: it is pickled)."""
        return [obj]

    def bcast_object(self, obj: Any, root: int = 0) -> Any:
        return obj

    def allreduce_scalar(self, x: float, op: str = "sum") -> float:
        """Sum, min or max of one float over ranks."""
        return float(x)

    def barrier(self) -> None: ...

    def abort(self, code: int = 1) -> None:
        os._exit(code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size}, backend={self.backend!r})"


def _contiguous(name: str, buf: Any) -> None:
    if not (isinstance(buf, np.ndarray) and buf.flags.c_contiguous):
        raise TypeError(f"minicnn.distributed.{name}: needs a C-contiguous NumPy array, got "
                        f"{type(buf).__name__} {getattr(buf, 'shape', '')} (CuPy arrays go through NCCL)")


class _MPIRequest(Request):
    def __init__(self, req: Any):
        self.req = req

    def wait(self) -> None:
        self.req.Wait()

    def test(self) -> bool:
        return bool(self.req.Test())


class MPICommunicator(Communicator):
    """Collectives over an mpi4py communicator (COMM_WORLD by default), for NumPy arrays."""

    backend = "mpi"

    def __init__(self, comm: Any = None):
        super().__init__()
        from mpi4py import MPI  # the `distributed` extra
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED)   # the ranks sharing this host's memory
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        node.Free()
        self._ops = {"sum": MPI.SUM, "min": MPI.MIN, "max": MPI.MAX}

    def allreduce_(self, buf: Any) -> Any:
        _contiguous("allreduce_", buf)
        self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)
        return buf

    def iallreduce_(self, buf: Any) -> Request:
        _contiguous("iallreduce_", buf)
        return _MPIRequest(self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM))

    def bcast_(self, buf: Any, root: int = 0) -> Any:
        _contiguous("bcast_", buf)
        self.comm.Bcast(buf, root=root)
        return buf

    def allgather(self, a: np.ndarray) -> np.ndarray:
        a = np.ascontiguousarray(a)
        out = np.empty((self.size,) + a.shape, dtype=a.dtype)
        self.comm.Allgather(a, out)
        return out

    def allgather_object(self, obj: Any) -> list:
        return self.comm.allgather(obj)

    def bcast_object(self, obj: Any, root: int = 0) -> Any:
        return self.comm.bcast(obj, root=root)

    def allreduce_scalar(self, x: float, op: str = "sum") -> float:
        buf = np.array([x], dtype=np.float64)
        self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self._ops[op])
        return float(buf[0])

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


_world: Communicator | None = None
_rank0_writes = False


def init(set_threads: bool = True, abort_on_error: bool = True) -> Communicator:
    """Join the job the launcher started and return the world communicator (idempotent).

    World size 1 (plain `python ...`) needs no MPI. Under mpiexec the ranks sharing a host
    split its cores between them (minicnn's thread count), and with `abort_on_error` an
    uncaught exception on any rank prints that rank's traceback and aborts every rank.
    """
    global _world
    if _world is not None:
        return _world
    rank, size = launcher_env()
    if size > 1:
        try:
            import mpi4py  # noqa: F401
        except ImportError as e:
            raise RuntimeError(f"minicnn.distributed.init: this process is rank {rank} of {size} (launcher "
                               f"environment) but mpi4py is missing: pip install 'minicnn[distributed]'") from e
        comm: Communicator = MPICommunicator()
        if (comm.rank, comm.size) != (rank, size):
            raise RuntimeError(f"minicnn.distributed.init: the launcher says rank {rank} of {size}, MPI says "
                               f"{comm.rank} of {comm.size}: mpi4py is linked to a different MPI than mpiexec")
    else:
        comm = Communicator()
    _world = comm
    if set_threads and comm.local_size > 1 and not os.environ.get("MINICNN_NUM_THREADS"):
        from .. import set_num_threads
        set_num_threads(max(1, _usable_cores() // comm.local_size))  # ranks on one host share its cores
    if abort_on_error and comm.size > 1:
        install_abort_hook(comm)
    return comm


def world() -> Communicator:
    """The communicator from `init()` (initialising on first use)."""
    return _world if _world is not None else init()


def get_rank() -> int:
    return world().rank


def get_world_size() -> int:
    return world().size


def is_main_process() -> bool:
    """True on rank 0, the only rank that should write files, print and plot."""
    return world().rank == 0


def report_and_abort(comm: Communicator, exc: BaseException, code: int = 1) -> None:
    """Print which rank failed and why, then abort every rank (never leave the others waiting)."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    sys.stderr.write(f"\n[minicnn.distributed] rank {comm.rank} of {comm.size} failed; aborting all ranks:\n{text}")
    sys.stderr.flush()
    sys.stdout.flush()
    comm.abort(code)


def install_abort_hook(comm: Communicator) -> None:
    """Make an uncaught exception on this rank abort the whole job with its traceback."""
    previous = sys.excepthook

    def hook(tp: Any, value: BaseException, tb: Any) -> None:
        if issubclass(tp, (KeyboardInterrupt, SystemExit)):
            previous(tp, value, tb)
            return
        report_and_abort(comm, value.with_traceback(tb))
    sys.excepthook = hook


@contextlib.contextmanager
def abort_on_error(comm: Communicator | None = None) -> Iterator[None]:
    """Inside this block, an exception on any rank aborts all ranks (for code that catches errors itself)."""
    try:
        yield
    except Exception as e:
        c = comm or world()
        if c.size > 1:
            report_and_abort(c, e)
        raise


def writes_suppressed() -> bool:
    """True on ranks other than 0 inside `rank0_writes()`: `minicnn.save` then writes nothing."""
    return _rank0_writes and _world is not None and _world.rank != 0


@contextlib.contextmanager
def rank0_writes() -> Iterator[None]:
    """Only rank 0 writes files with `minicnn.save` inside this block (checkpoints of `fit`)."""
    global _rank0_writes
    old, _rank0_writes = _rank0_writes, True
    try:
        yield
    finally:
        _rank0_writes = old
