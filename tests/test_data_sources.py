"""minicnn.data.sources (where the pneumonia data comes from) and the wrappers the example uses."""
import numpy as np
import pytest
from PIL import Image

from minicnn import data as D
from minicnn.data import medmnist, sources


def medmnist_npz(path, n=8, size=28):
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = np.full((n, size, size), 7, np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2)[:, None]
    np.savez(path, **arrays)


@pytest.fixture(autouse=True)
def small_official_counts(monkeypatch):
    """medmnist_npz's tiny files stand in for the official one: give them the official class counts."""
    monkeypatch.setattr(medmnist, "CLASS_COUNTS", {s: (4, 4) for s in ("train", "val", "test")})
    monkeypatch.setattr(medmnist, "_verified", {})


@pytest.fixture
def few_phantoms(monkeypatch):
    monkeypatch.setattr(sources, "PHANTOM_SIZES", {"train": 20, "val": 3, "test": 6})  # drawing 2900 is slow


def test_synthetic_and_phantom_defaults(few_phantoms):
    s = D.pneumonia_splits(synthetic=True, size=28, seed=1)
    assert s.synthetic and s.fallback_reason is None and "NOT real" in s.name
    assert {k: len(v) for k, v in s.datasets.items()} == {"train": 20, "val": 3, "test": 6}
    assert np.asarray(s.datasets["train"][0][0]).shape[:2] == (28, 28)
    assert np.asarray(sources.phantom_splits().datasets["val"][0][0]).shape[:2] == (64, 64)


def test_local_npz_file_and_folder(tmp_path):
    medmnist_npz(tmp_path / "mine.npz")
    s = D.pneumonia_splits(tmp_path / "mine.npz")
    assert s.name == "mine.npz" and not s.synthetic and len(s.datasets["test"]) == 8
    folder = tmp_path / "folder"
    folder.mkdir()
    medmnist_npz(folder / "pneumoniamnist.npz")
    s = D.pneumonia_splits(folder)
    assert s.name == "PneumoniaMNIST 28px" and D.get_targets(s.datasets["val"]).tolist() == [0, 1] * 4


@pytest.mark.parametrize("make,match", [
    (lambda p: p / "nowhere.npz", "does not exist"),
    (lambda p: (p / "a.txt").write_text("x") and p / "a.txt", "is a file but not a .npz"),
    (lambda p: np.savez(p / "bad.npz", x=np.zeros(3)) or p / "bad.npz", "no array 'train_images'.*MedMNIST keys"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "neither train/ and test/ folders nor pneumoniamnist"),
])
def test_local_errors_name_the_path(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(D.DataSourceError, match=match) as e:
        D.pneumonia_splits(path)
    assert str(path) in str(e.value)


def test_kaggle_folder(tmp_path):
    for split in ("train", "test"):
        for cls, value in (("NORMAL", 20), ("PNEUMONIA", 200)):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(10):
                Image.fromarray(np.full((40, 30), value + i, np.uint8)).save(tmp_path / split / cls / f"{i}.png")
    s = D.pneumonia_splits(tmp_path, size=28, val_fraction=0.2)
    assert s.name == f"{tmp_path.name} folder"
    assert {k: len(v) for k, v in s.datasets.items()} == {"train": 16, "val": 4, "test": 20}
    assert np.asarray(s.datasets["test"][0][0]).shape[:2] == (28, 28)
    (tmp_path / "train" / "OTHER").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "train" / "OTHER" / "x.png")
    with pytest.raises(D.DataSourceError, match="expected NORMAL and PNEUMONIA"):
        D.pneumonia_splits(tmp_path)


def test_no_data_falls_back_to_phantoms_only_when_allowed(tmp_path, monkeypatch, few_phantoms):
    monkeypatch.setenv("MINICNN_DATA_DIR", str(tmp_path))  # an empty cache

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(medmnist, "download_url", offline)
    s = D.pneumonia_splits(size=64)
    assert s.synthetic and "network is unreachable" in s.fallback_reason
    assert np.asarray(s.datasets["train"][0][0]).shape[:2] == (64, 64)
    with pytest.raises(D.DataSourceError, match="no real data.*network is unreachable") as e:
        D.pneumonia_splits(fallback=False)
    assert "PneumoniaMNIST" in str(e.value) and "--data" in str(e.value)  # says how to get real data


def test_cached_file_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_DATA_DIR", str(tmp_path))
    medmnist_npz(tmp_path / "pneumoniamnist.npz")
    s = D.pneumonia_splits()
    assert s.name == "PneumoniaMNIST 28px" and s.fallback_reason is None and len(s.datasets["train"]) == 8


def test_damaged_cached_file_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_DATA_DIR", str(tmp_path))
    (tmp_path / "pneumoniamnist.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(D.DataError, match="pneumoniamnist.npz"):
        D.pneumonia_splits()


def test_with_transform_and_balanced_subset():
    base = D.PhantomDataset("val", n=40, size=16, seed=0)
    wrapped = D.WithTransform(base, lambda img: np.asarray(img, np.float32) / 255)
    img, label = wrapped[3]
    assert img.dtype == np.float32 and label == base[3][1] and len(wrapped) == 40
    np.testing.assert_array_equal(wrapped.targets, base.targets)
    sub = D.balanced_subset(base, 10, seed=0)
    assert len(sub) == 10 and np.bincount(D.get_targets(sub)).tolist() == [5, 5]
    assert D.balanced_subset(base, None) is base and D.balanced_subset(base, 100) is base
    again = D.balanced_subset(base, 10, seed=0)
    np.testing.assert_array_equal(sub.indices, again.indices)  # deterministic
