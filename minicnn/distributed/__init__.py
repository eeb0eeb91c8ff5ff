"""`minicnn.distributed`: data-parallel training over processes and hosts (MPI; NCCL for CuPy arrays).

    comm = distributed.init()                     # rank and world size from mpiexec's environment
    loader = DataLoader(ds, batch_size=8, sampler=distributed.DistributedSampler(ds, seed=0))
    fit(model, loader, ..., distributed=True)     # or wrap: DistributedDataParallel(model)

Run with `mpiexec -n 4 python train.py`; a plain `python train.py` is a world of one. Needs
`pip install 'minicnn[distributed]'` (mpi4py and an MPI runtime) only when launched on more
than one rank. See docs/distributed.md.
"""
from .comm import (
                   Communicator,
                   MPICommunicator,
                   abort_on_error,
                   get_rank,
                   get_world_size,
                   init,
                   is_main_process,
                   launcher_env,
                   rank0_writes,
                   world,
)
from .ddp import DistributedDataParallel
from .sampler import DistributedSampler
from .syncbn import SyncBatchNorm, SyncBatchNormFn
from .training import GatheredMetricTracker, check_in_sync

DataParallel = DistributedDataParallel

__all__ = ["Communicator", "DataParallel", "DistributedDataParallel", "DistributedSampler", "GatheredMetricTracker",
           "MPICommunicator", "SyncBatchNorm", "SyncBatchNormFn", "abort_on_error", "check_in_sync", "get_rank",
           "get_world_size", "init", "is_main_process", "launcher_env", "rank0_writes", "world"]
