"""DataLoader: seeded shuffling, batching and background loading with worker threads.

Threads, not processes: Pillow's decoders and resamplers and NumPy's array loops release the
GIL, so threads overlap image work with training without pickling the dataset. Every sample
gets its own generator seeded from (seed, epoch, position in the epoch), so the batches are
identical whatever `num_workers` is.
"""
from __future__ import annotations

import math
import secrets
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .checks import describe
from .collate import default_collate
from .errors import SampleError, sample_error
from .rng import make_rng, sample_rng


def sample_path(dataset: Any, index: int) -> str | None:
    """The file behind `dataset[index]`, looking through Subset and ConcatDataset, or None."""
    for _ in range(32):  # nesting depth guard
        if hasattr(dataset, "indices") and hasattr(dataset, "dataset"):  # Subset
            dataset, index = dataset.dataset, int(dataset.indices[index])
        elif hasattr(dataset, "datasets") and hasattr(dataset, "offsets"):  # ConcatDataset
            d = int(np.searchsorted(dataset.offsets, index, side="right")) - 1
            dataset, index = dataset.datasets[d], index - int(dataset.offsets[d])
        else:
            break
    samples = getattr(dataset, "samples", None)
    if isinstance(samples, list) and 0 <= index < len(samples) and isinstance(samples[index], tuple):
        return str(samples[index][0])  # ImageFolder
    if getattr(dataset, "path", None) is not None:  # NpzDataset: the file and the row in it
        return f"{dataset.path}, {getattr(dataset, 'split', '')} row {index}"
    return None


class DataLoader:
    """Iterate over `dataset` in batches of `batch_size` (images float32 NCHW, labels int64).

    shuffle: a new permutation each epoch from (seed, epoch); the epoch advances by one per
    `iter()` or is set with `set_epoch`. sampler: an object with `sample(rng) -> indices` and
    `__len__` (e.g. WeightedRandomSampler), used instead of shuffling. num_workers threads keep
    up to `num_workers * prefetch` batches in flight. device='cuda' moves each batch to the GPU;
    with workers, each worker copies its own batch (on its own CUDA stream, from pinned memory),
    so the copies overlap the training step.
    """

    def __init__(self, dataset: Any, batch_size: int = 32, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None, num_workers: int = 0, prefetch: int = 2,
                 collate_fn: Callable | None = None, device: str | None = None, sampler: Any = None):
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        if num_workers < 0 or prefetch < 1:
            raise ValueError(f"DataLoader: need num_workers >= 0 and prefetch >= 1, got {num_workers}, {prefetch}")
        if shuffle and sampler is not None:
            raise ValueError("DataLoader: shuffle=True and sampler= are exclusive (the sampler decides the order)")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self.num_workers, self.prefetch, self.sampler = num_workers, prefetch, sampler
        self.collate_fn = collate_fn or default_collate
        self.device = device
        # without a seed, draw one from the OS: epochs still differ, runs do not repeat
        self.seed = secrets.randbits(63) if seed is None else int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use `epoch` (its shuffle order and augmentation)."""
        self.epoch = int(epoch)

    def to(self, device: str | None) -> DataLoader:
        """Deliver batches on `device` ('cpu', 'cuda' or None for plain NumPy); returns self."""
        self.device = device
        return self

    def _num_samples(self) -> int:
        return len(self.sampler) if self.sampler is not None else len(self.dataset)

    def __len__(self) -> int:
        n = self._num_samples()
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The dataset indices of one epoch, in visiting order (N,) int64."""
        if self.sampler is not None:
            return np.asarray(self.sampler.sample(make_rng(self.seed, epoch)), dtype=np.int64)
        if self.shuffle:
            return make_rng(self.seed, epoch).permutation(len(self.dataset))
        return np.arange(len(self.dataset))

    def _batches(self, epoch: int) -> list[tuple[int, np.ndarray]]:
        """(position of the first sample, indices) for each batch of the epoch."""
        order = self.order(epoch)
        stop = len(self) * self.batch_size if self.drop_last else len(order)
        return [(p, order[p:p + self.batch_size]) for p in range(0, stop, self.batch_size)]

    def _load(self, first: int, indices: np.ndarray, epoch: int) -> Any:
        samples = []
        for k, i in enumerate(indices):
            try:
                with sample_rng(make_rng(self.seed, epoch, first + k)):
                    samples.append(self.dataset[int(i)])
            except SampleError:
                raise
            except Exception as e:  # name the sample and its file; keep the original as __cause__
                raise self._error(e, int(i), "loading") from e
        try:
            return self.collate_fn(samples)
        except SampleError:
            raise
        except Exception as e:
            pos = getattr(e, "position", None)
            index = int(indices[pos]) if pos is not None else int(indices[0])
            what = "batching" if pos is not None else f"batching samples {indices[:8].tolist()}..., e.g."
            raise self._error(e, index, what) from e

    def _error(self, e: Exception, index: int, what: str) -> SampleError:
        path = sample_path(self.dataset, index)
        msg = (f"DataLoader: {what} sample {index} of {describe(self.dataset)}"
               + (f" (file {path})" if path else "") + f" failed: {type(e).__name__}: {e}")
        return sample_error(e, msg, index, path, self.dataset)

    def _move(self, batch: Any, in_worker: bool = False) -> Any:
        if self.device is None:
            return batch
        from ..backend import normalize_device, to_device  # imported late: the data package works without the engine
        device = self.device

        def move(b: Any) -> Any:
            if in_worker and normalize_device(device) == "cuda":
                from ..cuda.transfer import to_device_in_worker  # own stream + pinned buffer: overlaps the step
                return to_device_in_worker(b)
            return to_device(b, device)
        if isinstance(batch, (tuple, list)):
            return type(batch)(move(b) if isinstance(b, np.ndarray) else b for b in batch)
        return move(batch)

    def _load_moved(self, first: int, indices: np.ndarray, epoch: int) -> Any:
        """A worker's task: load and collate, then copy to the device (so copies overlap training)."""
        return self._move(self._load(first, indices, epoch), in_worker=True)

    def __iter__(self) -> Iterator[Any]:
        epoch = self.epoch  # claimed now, not at the first next(), so two iterators never share one
        self.epoch += 1
        return self._iterate(epoch)

    def _iterate(self, epoch: int) -> Iterator[Any]:
        batches = self._batches(epoch)
        if self.num_workers == 0:
            for first, indices in batches:
                yield self._move(self._load(first, indices, epoch))
            return
        pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix="minicnn-data")
        todo = iter(batches)
        pending: deque = deque()
        try:
            for first, indices in todo:
                pending.append(pool.submit(self._load_moved, first, indices, epoch))
                if len(pending) >= self.num_workers * self.prefetch:
                    break
            while pending:
                batch = pending.popleft().result()  # re-raises a worker's exception here
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(pool.submit(self._load_moved, nxt[0], nxt[1], epoch))
                yield batch
        finally:  # also runs when the caller breaks out early: drop queued work, join the threads
            pool.shutdown(wait=True, cancel_futures=True)
