"""NpzDataset, PneumoniaMNIST (local file, download through file:// and a fake opener) and download_url."""
import hashlib
import io
import os

import numpy as np
import pytest

from minicnn.data import NpzDataset, PneumoniaMNIST, download_url, md5sum, medmnist

SIZES = {"train": 12, "val": 4, "test": 6}


@pytest.fixture(autouse=True)
def small_official_counts(monkeypatch):
    """The tiny files below stand in for the official one: same class counts as write_medmnist's labels."""
    monkeypatch.setattr(medmnist, "CLASS_COUNTS", {s: ((n + 1) // 2, n // 2) for s, n in SIZES.items()})
    monkeypatch.setattr(medmnist, "_verified", {})


def write_medmnist(path, size=28, extra=True, label_max=1):
    """A small MedMNIST-shaped file: (N, size, size) uint8 images, (N, 1) labels."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in SIZES.items():
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % (label_max + 1)).reshape(n, 1).astype(np.uint8)
        if extra:
            arrays[f"{split}_files"] = np.array([f"{split}/img_{i}.jpeg" for i in range(n)])
    np.savez(path, **arrays)
    return arrays


def test_npz_dataset_items_shapes_and_extras(tmp_path):
    arrays = write_medmnist(tmp_path / "d.npz")
    ds = NpzDataset(tmp_path / "d.npz", "val")
    assert len(ds) == 4 and ds.targets.dtype == np.int64 and ds.targets.tolist() == [0, 1, 0, 1]
    img, label = ds[-1]
    assert img.shape == (28, 28, 1) and img.dtype == np.uint8 and label == 1 and isinstance(label, int)
    assert np.array_equal(img[:, :, 0], arrays["val_images"][3])
    assert ds.extras["files"][2] == "val/img_2.jpeg"
    with pytest.raises(ValueError):
        img[0, 0, 0] = 1  # items are read-only views of the dataset
    with pytest.raises(IndexError, match="index 4 out of range for 4"):
        ds[4]


def test_npz_dataset_skips_arrays_that_need_pickle(tmp_path):
    np.savez(tmp_path / "o.npz", train_images=np.zeros((2, 3, 3), np.uint8), train_labels=np.array([0, 1]),
             train_meta=np.array([{"a": 1}, None], dtype=object))
    ds = NpzDataset(tmp_path / "o.npz")
    assert "meta" not in ds.extras and len(ds) == 2


def test_npz_dataset_errors_name_file_and_shapes(tmp_path):
    np.savez(tmp_path / "bad.npz", train_images=np.zeros((3, 4, 4), np.uint8), train_labels=np.zeros(2))
    with pytest.raises(KeyError, match="no array 'test_images'"):
        NpzDataset(tmp_path / "bad.npz", "test")
    with pytest.raises(ValueError, match=r"bad.npz: 3 images in train_images but 2 labels"):
        NpzDataset(tmp_path / "bad.npz", labels_key="train_labels")
    with pytest.raises(FileNotFoundError):
        NpzDataset(tmp_path / "missing.npz")


def test_pneumoniamnist_accepts_a_local_file_without_md5(tmp_path, monkeypatch):
    write_medmnist(tmp_path / "pneumoniamnist.npz")
    monkeypatch.setattr(medmnist, "download_url", lambda *a, **k: pytest.fail("must not download"))
    ds = PneumoniaMNIST("test", root=tmp_path)
    assert len(ds) == 6 and ds.classes == ["normal", "pneumonia"]


def test_pneumoniamnist_root_defaults_to_env(tmp_path, monkeypatch):
    write_medmnist(tmp_path / "pneumoniamnist_64.npz", size=64)
    monkeypatch.setenv("MINICNN_DATA_DIR", str(tmp_path))
    assert PneumoniaMNIST("val", size=64, download=False)[0][0].shape == (64, 64, 1)
    monkeypatch.delenv("MINICNN_DATA_DIR")
    assert str(medmnist.default_root()).endswith(os.path.join(".cache", "minicnn"))


def test_pneumoniamnist_checks_local_file(tmp_path):
    write_medmnist(tmp_path / "pneumoniamnist.npz", size=30)
    with pytest.raises(ValueError, match=r"train_images is uint8 \(12, 30, 30\), expected uint8 \(12, 28, 28\)"):
        PneumoniaMNIST("train", root=tmp_path)
    write_medmnist(tmp_path / "pneumoniamnist.npz", label_max=2)
    with pytest.raises(ValueError, match=r"hold the values \[0, 1, 2\], expected 0 \(normal\) and 1"):
        PneumoniaMNIST("train", root=tmp_path)
    np.savez(tmp_path / "pneumoniamnist.npz", train_images=np.zeros((1, 28, 28), np.uint8), train_labels=[[0]])
    with pytest.raises(ValueError, match="missing"):
        PneumoniaMNIST("train", root=tmp_path)


def test_pneumoniamnist_downloads_via_url_and_checks_md5(tmp_path, monkeypatch):
    src = tmp_path / "mirror" / "pneumoniamnist.npz"
    src.parent.mkdir()
    write_medmnist(src)
    monkeypatch.setitem(medmnist.MD5, 28, md5sum(src))
    ds = PneumoniaMNIST("train", root=tmp_path / "cache", url=src.as_uri())
    assert len(ds) == 12 and (tmp_path / "cache" / "pneumoniamnist.npz").is_file()


def test_pneumoniamnist_md5_mismatch_leaves_nothing(tmp_path):
    src = tmp_path / "pneumoniamnist.npz"
    write_medmnist(src)  # not the official file, so its md5 differs
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="md5 mismatch"):
        PneumoniaMNIST("train", root=cache, url=src.as_uri())
    assert list(cache.iterdir()) == []


def test_pneumoniamnist_offline_error_says_where_to_put_the_file(tmp_path):
    missing = (tmp_path / "nowhere.npz").as_uri()
    with pytest.raises(RuntimeError, match=r"could not download .*put the official pneumoniamnist_128.npz"):
        PneumoniaMNIST("train", size=128, root=tmp_path, url=missing)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "pneumoniamnist.npz")):
        PneumoniaMNIST("train", root=tmp_path, download=False)
    with pytest.raises(ValueError, match="size must be one of"):
        PneumoniaMNIST("train", size=32, root=tmp_path)


class FakeResponse(io.BytesIO):
    def __init__(self, data, fail_after=None):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}
        self.fail_after = fail_after

    def read(self, n=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection dropped")
        return super().read(min(n, 1000) if n > 0 else n)


def test_download_url_with_injected_opener(tmp_path):
    data = os.urandom(5000)
    dest = download_url("https://example/x.bin", tmp_path / "x.bin", md5=hashlib.md5(data).hexdigest(),
                        opener=lambda url: FakeResponse(data), progress=False)
    assert dest.read_bytes() == data


@pytest.mark.parametrize("md5, fail_after", [("0" * 32, None), (None, 2000)])
def test_download_url_failure_leaves_no_file(tmp_path, md5, fail_after):
    dest = tmp_path / "x.bin"
    dest_old = b"previous good copy"
    dest.write_bytes(dest_old)
    with pytest.raises(OSError):
        download_url("https://example/x.bin", dest, md5=md5,
                     opener=lambda url: FakeResponse(os.urandom(5000), fail_after), progress=False)
    assert dest.read_bytes() == dest_old and sorted(p.name for p in tmp_path.iterdir()) == ["x.bin"]
