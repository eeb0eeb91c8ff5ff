"""DataLoader: batching, collation, seeded order and augmentation independent of workers, early stop."""
import threading
import time

import numpy as np
import pytest
from PIL import Image

from minicnn.data import DataLoader, default_collate
from minicnn.data import loader as loader_module
from minicnn.data import transforms as T


class Toy:
    """n grey 8x6 images whose pixels encode the index; optional transform and per-item delay."""

    def __init__(self, n=50, transform=None, delay=0.0):
        self.n, self.transform, self.delay = n, transform, delay
        self.targets = np.arange(n) % 3

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if self.delay:
            time.sleep(self.delay)
        img = np.full((8, 6, 1), i, np.uint8)
        img[0, 0, 0] = 255  # make flips/affines visible
        return (self.transform(img) if self.transform else img), int(self.targets[i])


def collect(loader):
    return [(x.copy(), y.copy()) for x, y in loader]


def test_batches_shapes_dtypes_and_len():
    loader = DataLoader(Toy(50), batch_size=16)
    batches = collect(loader)
    assert len(loader) == 4 == len(batches)
    x, y = batches[0]
    assert x.shape == (16, 1, 8, 6) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.allclose(x[3, 0, 1, 1], 3 / 255) and y.tolist()[:4] == [0, 1, 2, 0]
    assert batches[-1][0].shape[0] == 2
    dropped = DataLoader(Toy(50), batch_size=16, drop_last=True)
    assert len(dropped) == 3 == len(collect(dropped))


def test_shuffle_is_seeded_and_changes_per_epoch():
    loader = DataLoader(Toy(40), batch_size=40, shuffle=True, seed=3)
    e0, e1 = (np.rint(b[0][:, 0, 1, 1] * 255) for b in (collect(loader)[0], collect(loader)[0]))
    assert sorted(e0) == list(range(40)) and not np.array_equal(e0, e1)
    again = DataLoader(Toy(40), batch_size=40, shuffle=True, seed=3)
    assert np.array_equal(np.rint(collect(again)[0][0][:, 0, 1, 1] * 255), e0)
    again.set_epoch(1)
    assert np.array_equal(np.rint(collect(again)[0][0][:, 0, 1, 1] * 255), e1)
    assert loader.epoch == 2


AUG = T.Compose([T.RandomAffine(20, translate=(0.2, 0.2)), T.RandomHorizontalFlip(), T.ToArray(),
                 T.GaussianNoise(0.05)])


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_same_batches_whatever_the_worker_count(workers):
    ref = collect(DataLoader(Toy(45, AUG), batch_size=8, shuffle=True, seed=11))
    got = collect(DataLoader(Toy(45, AUG), batch_size=8, shuffle=True, seed=11, num_workers=workers, prefetch=1))
    assert len(ref) == len(got) == 6
    for (xr, yr), (xg, yg) in zip(ref, got):
        assert np.array_equal(xr, xg) and np.array_equal(yr, yg)
    other = collect(DataLoader(Toy(45, AUG), batch_size=8, shuffle=True, seed=12))
    assert not np.array_equal(ref[0][0], other[0][0])


def test_augmentation_differs_between_epochs_and_duplicates():
    loader = DataLoader(Toy(4, AUG), batch_size=4, seed=0)
    a, b = collect(loader)[0][0], collect(loader)[0][0]
    assert not np.array_equal(a, b)


def test_workers_overlap_slow_items():
    ds = Toy(16, delay=0.02)
    start = time.perf_counter()
    collect(DataLoader(ds, batch_size=2, num_workers=4))
    assert time.perf_counter() - start < 16 * 0.02 * 0.75  # serial would take 0.32 s


def test_breaking_out_early_stops_the_threads():
    before = threading.active_count()
    loader = DataLoader(Toy(400, delay=0.002), batch_size=4, num_workers=2, prefetch=2)
    for i, _ in enumerate(loader):
        if i == 2:
            break
    deadline = time.time() + 5
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before
    assert not any(t.name.startswith("minicnn-data") for t in threading.enumerate())


def test_worker_errors_reach_the_caller():
    class Broken(Toy):
        def __getitem__(self, i):
            if i == 13:
                raise OSError("cannot read image /x/13.jpeg")
            return super().__getitem__(i)
    with pytest.raises(OSError, match="13.jpeg"):
        collect(DataLoader(Broken(30), batch_size=4, num_workers=2))


def test_collate_conversions():
    pil = [(Image.fromarray(np.full((3, 2), 51, np.uint8)), 1)] * 2
    x, y = default_collate(pil)
    assert x.shape == (2, 1, 3, 2) and np.allclose(x, 0.2)
    rgb = [(np.zeros((3, 2, 3), np.uint8), 0)]
    assert default_collate(rgb)[0].shape == (1, 3, 3, 2)
    chw = [(np.ones((1, 3, 2), np.float32), 0.5, "a.jpeg")] * 2
    x, y, names = default_collate(chw)
    assert x.shape == (2, 1, 3, 2) and y.dtype == np.float32 and names == ["a.jpeg", "a.jpeg"]
    with pytest.raises(ValueError, match=r"differing shapes \[\(2, 2, 1\), \(3, 2, 1\)\]"):
        default_collate([(np.zeros((3, 2, 1), np.uint8), 0), (np.zeros((2, 2, 1), np.uint8), 0)])


def test_custom_collate_and_device_hook(monkeypatch):
    moved = []
    monkeypatch.setattr("minicnn.backend.to_device", lambda a, d: moved.append(d) or ("on", d, a.shape))
    loader = DataLoader(Toy(4), batch_size=4).to("cuda")
    x, y = next(iter(loader))
    assert x == ("on", "cuda", (4, 1, 8, 6)) and moved == ["cuda", "cuda"]
    custom = DataLoader(Toy(4), batch_size=2, collate_fn=lambda s: len(s))
    assert list(custom) == [2, 2]


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(Toy(), batch_size=0)
    with pytest.raises(ValueError, match="exclusive"):
        DataLoader(Toy(), shuffle=True, sampler=object())
    assert loader_module.DataLoader(Toy(3)).seed != loader_module.DataLoader(Toy(3)).seed  # unseeded: random
