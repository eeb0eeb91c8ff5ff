"""Real chest X-ray data in $MINICNN_DATA_DIR: published counts, a few decoded images, known quirks.

Skipped when MINICNN_DATA_DIR is unset or missing. Kept fast: files are counted and hashed,
only a handful are decoded.
"""
import hashlib
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from minicnn.data import DataLoader, ImageFolder, NpzDataset, PneumoniaMNIST, md5sum
from minicnn.data import transforms as T

ROOT = Path(os.environ.get("MINICNN_DATA_DIR", "/nonexistent-minicnn-data"))
pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(not ROOT.is_dir(), reason="MINICNN_DATA_DIR not set or missing")]

PNEUMONIAMNIST = {"train": (1214, 3494), "val": (135, 389), "test": (234, 390)}


def md5_bytes(a):
    return hashlib.md5(np.ascontiguousarray(a).tobytes()).hexdigest()


def need(path):
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_pneumoniamnist_counts(split):
    need(ROOT / "pneumoniamnist.npz")
    ds = PneumoniaMNIST(split, size=28, download=False)  # root from MINICNN_DATA_DIR
    assert tuple(np.bincount(ds.targets)) == PNEUMONIAMNIST[split]
    img, label = ds[0]
    assert img.shape == (28, 28, 1) and img.dtype == np.uint8 and label in (0, 1)


def test_pneumoniamnist_has_8_images_in_both_train_and_val():
    path = need(ROOT / "pneumoniamnist.npz")
    digests = {s: {md5_bytes(im) for im in NpzDataset(path, s).images} for s in ("train", "val")}
    assert len(digests["train"] & digests["val"]) == 8


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_kermany_64_npz(split):
    ds = NpzDataset(need(ROOT / "kermany_64_splits.npz"), split)
    assert tuple(np.bincount(ds.targets)) == PNEUMONIAMNIST[split]  # same membership as PneumoniaMNIST
    assert ds.images.shape[1:] == (64, 64, 1) and len(ds.extras["files"]) == len(ds)
    names = ds.extras["files"]
    assert all(("NORMAL" in str(n)) == (t == 0) for n, t in zip(names[:50], ds.targets[:50]))


@pytest.mark.parametrize("split, counts", [("train", (1349, 3883)), ("test", (234, 390))])
def test_kermany_224_folder(split, counts):
    ds = ImageFolder(need(ROOT / "chest_xray_224" / split), grayscale=True)
    assert ds.classes == ["NORMAL", "PNEUMONIA"] and tuple(np.bincount(ds.targets)) == counts
    for i in (0, len(ds) - 1):
        img, label = ds[i]
        assert img.shape == (224, 224, 1) and img.dtype == np.uint8 and label == ds.targets[i]


@pytest.mark.parametrize("split, counts", [("train", (111, 70, 70)), ("test", (26, 20, 20))])
def test_covid_three_classes(split, counts):
    ds = ImageFolder(need(ROOT / "covid19_3class" / split))
    assert ds.classes == ["Covid", "Normal", "Viral Pneumonia"]
    assert tuple(np.bincount(ds.targets)) == counts
    img = ImageFolder(ds.root, grayscale=False)[len(ds) - 1][0]
    assert img.shape == (640, 640, 3)


def duplicate_groups(folder):
    groups = defaultdict(list)
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.name != "MANIFEST.md5":
            groups[md5sum(f)].append(f.relative_to(folder).parts[0])  # remember the split
    return [g for g in groups.values() if len(g) > 1]


def test_kermany_has_27_duplicate_groups_none_across_splits():
    groups = duplicate_groups(need(ROOT / "chest_xray_224"))
    assert len(groups) == 27 and all(len(set(g)) == 1 for g in groups)


def test_covid_has_10_duplicate_groups_6_across_splits():
    groups = duplicate_groups(need(ROOT / "covid19_3class"))
    assert len(groups) == 10 and sum(len(set(g)) > 1 for g in groups) == 6


def test_clahe_matches_naive_on_a_real_xray():
    img = NpzDataset(need(ROOT / "kermany_64_splits.npz"), "test").images[0, :, :, 0]
    assert np.array_equal(T.clahe(img), T.clahe_naive(img))
    big = ImageFolder(need(ROOT / "chest_xray_224" / "test"), grayscale=True)[0][0][:, :, 0]
    assert np.array_equal(T.clahe(big, 2.0, (8, 8)), T.clahe_naive(big, 2.0, (8, 8)))


def test_loader_over_the_real_folder_is_worker_independent():
    aug = T.Compose([T.Resize(64), T.RandomAffine(10, translate=(0.05, 0.05)), T.RandomHorizontalFlip(),
                     T.CLAHE(), T.ToArray()])
    ds = ImageFolder(need(ROOT / "chest_xray_224" / "test"), transform=aug, grayscale=True)
    runs = [next(iter(DataLoader(ds, batch_size=8, shuffle=True, seed=5, num_workers=w))) for w in (0, 2)]
    assert runs[0][0].shape == (8, 1, 64, 64)
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])


def test_lung_crop_on_real_images_keeps_most_of_the_picture():
    ds = ImageFolder(need(ROOT / "covid19_3class" / "test"), grayscale=True)
    for i in (0, 30, 60):
        out = T.LungCrop()(ds[i][0])
        assert out.ndim == 3 and 0.3 * 640 <= min(out.shape[:2]) and max(out.shape[:2]) <= 640
