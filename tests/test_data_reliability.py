"""Issue 11, items 3, 4, 8, 9 (data side): verified files, one-line data errors naming the path,
DataLoader errors with index and file, one float32 CHW rule for every sample dtype and layout."""
import os
import warnings

import numpy as np
import pytest
from conftest import data_dir
from PIL import Image

from minicnn.data import (
    DataError,
    DataLoader,
    DownloadError,
    ImageFolder,
    ImageLoadError,
    NpzDataset,
    PneumoniaMNIST,
    SampleError,
    Subset,
    check_images,
    check_labels,
    check_split_folder,
    default_collate,
    md5sum,
    medmnist,
)

COUNTS = {"train": (3, 5), "val": (2, 2), "test": (2, 3)}


@pytest.fixture
def official(tmp_path, monkeypatch):
    """A small stand-in for the official 28 px file: official md5 and class counts patched to match it."""
    monkeypatch.setattr(medmnist, "CLASS_COUNTS", COUNTS)
    monkeypatch.setattr(medmnist, "_verified", {})
    rng = np.random.default_rng(0)
    arrays = {}
    for s, (a, b) in COUNTS.items():
        arrays[f"{s}_images"] = rng.integers(0, 256, (a + b, 28, 28), dtype=np.uint8)
        arrays[f"{s}_labels"] = np.array([0] * a + [1] * b, np.uint8).reshape(-1, 1)
    path = tmp_path / "pneumoniamnist.npz"
    np.savez(path, **arrays)
    monkeypatch.setitem(medmnist.MD5, 28, md5sum(path))
    return path, arrays


def test_official_md5_is_accepted_silently(official):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(PneumoniaMNIST("train", root=official[0].parent, download=False)) == 8


def test_truncated_npz_names_the_path_never_bare_badzipfile(official, tmp_path):
    path, _ = official
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as e:
        PneumoniaMNIST("train", root=tmp_path, download=False)
    msg = str(e.value)
    assert str(path) in msg and "md5" in msg and "delete it" in msg
    with pytest.raises(DataError, match=str(path)):  # NpzDataset too
        NpzDataset(path, "train")
    assert not isinstance(e.value, (FileNotFoundError, DownloadError))  # the only "no data" errors


def test_no_data_at_all_is_not_a_data_error(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        PneumoniaMNIST("train", root=tmp_path, download=False)
    assert not isinstance(e.value, DataError)
    with pytest.raises(DownloadError, match="could not download") as e:
        PneumoniaMNIST("train", root=tmp_path, url=(tmp_path / "nowhere.npz").as_uri())
    assert not isinstance(e.value, DataError) and not (tmp_path / "pneumoniamnist.npz").exists()


def test_inverted_labels_under_the_official_name_are_refused(official, tmp_path):
    path, arrays = official
    expected = medmnist.MD5[28]
    arrays = {k: (1 - v if k.endswith("labels") else v) for k, v in arrays.items()}
    np.savez(path, **arrays)
    with pytest.raises(DataError) as e:
        PneumoniaMNIST("train", root=tmp_path, download=False)
    msg = str(e.value)
    assert str(path) in msg and expected in msg and md5sum(path) in msg
    assert "labels inverted" in msg and "delete it" in msg


def test_reordered_copy_with_the_right_content_is_used_with_a_warning(official, tmp_path):
    path, arrays = official
    perm = {s: np.random.default_rng(1).permutation(sum(c)) for s, c in COUNTS.items()}
    np.savez(path, **{k: v[perm[k.split("_")[0]]] for k, v in arrays.items()})
    with pytest.warns(UserWarning, match="md5 .* match the official data"):
        PneumoniaMNIST("val", root=tmp_path, download=False)
    medmnist._verified.clear()
    with pytest.raises(DataError, match="strict_md5"):
        PneumoniaMNIST("val", root=tmp_path, download=False, strict_md5=True)


@pytest.mark.skipif(data_dir() is None, reason="MINICNN_DATA_DIR not set or missing")
def test_shared_reordered_copy_is_a_known_copy():
    path = data_dir() / "pneumoniamnist.npz"
    assert md5sum(path) in medmnist.KNOWN_COPIES[28]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = PneumoniaMNIST("test", root=data_dir(), download=False)
    assert len(ds) == 624
    assert medmnist._structure_problem(path, 28) == ""  # also passes the structural check


def test_folder_without_test_is_one_line(tmp_path):
    (tmp_path / "train" / "NORMAL").mkdir(parents=True)
    with pytest.raises(DataError, match=rf"{tmp_path} has no test/ folder .*expected train/ and test/"):
        check_split_folder(tmp_path)
    (tmp_path / "test").mkdir()
    assert check_split_folder(tmp_path) == tmp_path


def test_jpeg_that_is_not_an_image_names_the_file(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / c / "ok.jpeg")
    (tmp_path / "b" / "bad.jpeg").write_text("this is not a picture")
    ds = ImageFolder(tmp_path)
    with pytest.raises(ImageLoadError, match=r"bad\.jpeg") as e:
        check_images(ds)
    assert isinstance(e.value, DataError) and isinstance(e.value, OSError)
    with pytest.raises(SampleError) as e:  # through the DataLoader: index and file, cause kept
        list(DataLoader(ds, batch_size=3, num_workers=2))
    assert e.value.index == 1 and e.value.path.endswith("bad.jpeg") and "sample 1" in str(e.value)
    assert isinstance(e.value.__cause__, ImageLoadError) and isinstance(e.value, ImageLoadError)


def test_three_class_one_class_and_empty_npz(tmp_path):
    imgs = np.zeros((6, 4, 4), np.uint8)
    np.savez(tmp_path / "three.npz", train_images=imgs, train_labels=np.arange(6) % 3)
    with pytest.raises(DataError, match=r"three\.npz.*labels \[0, 1, 2\].*2 classes"):
        check_labels(NpzDataset(tmp_path / "three.npz"), 2)
    np.savez(tmp_path / "one.npz", train_images=imgs, train_labels=np.zeros(6, np.int64))
    with pytest.raises(DataError, match=r"one\.npz.*no samples of class pneumonia"):
        check_labels(NpzDataset(tmp_path / "one.npz"), 2, class_names=["normal", "pneumonia"])
    np.savez(tmp_path / "empty.npz", train_images=imgs[:0], train_labels=np.zeros(0, np.int64))
    with pytest.raises(DataError, match=r"empty\.npz.*holds no samples"):
        check_labels(NpzDataset(tmp_path / "empty.npz"), 2)
    np.savez(tmp_path / "nothing.npz")
    with pytest.raises(DataError, match=r"nothing\.npz has no array 'train_images'") as e:
        NpzDataset(tmp_path / "nothing.npz")
    assert isinstance(e.value, KeyError)  # as before, for callers that caught KeyError
    ok = NpzDataset(tmp_path / "three.npz")
    assert check_labels(ok, 3).tolist() == [2, 2, 2]
    assert check_labels(Subset(ok, [0, 1, 2]), 3).tolist() == [1, 1, 1]


def test_symlinked_class_folder_is_skipped_with_a_warning(tmp_path):
    for c in ("NORMAL", "PNEUMONIA"):
        (tmp_path / c).mkdir()
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / c / "x.png")
    os.symlink(tmp_path, tmp_path / "ALL")
    os.symlink(tmp_path / "NORMAL", tmp_path / "NORMAL2")
    with pytest.warns(UserWarning, match="skipping class folder") as rec:
        ds = ImageFolder(tmp_path)
    assert ds.classes == ["NORMAL", "PNEUMONIA"] and len(ds) == 2 and len(rec) == 2


# ---- item 8: DataLoader errors and the collate rule ---------------------------------------------------
class Items:
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        if isinstance(self.items[i], Exception):
            raise self.items[i]
        return self.items[i], i % 2


def test_loader_error_carries_index_and_cause():
    boom = ZeroDivisionError("division by zero in a transform")
    items = [np.zeros((2, 2), np.uint8)] * 9 + [boom] + [np.zeros((2, 2), np.uint8)] * 2
    for workers in (0, 2):
        with pytest.raises(SampleError, match=r"sample 9 of Items.*ZeroDivisionError") as e:
            list(DataLoader(Items(items), batch_size=4, num_workers=workers))
        assert e.value.index == 9 and e.value.__cause__ is boom
        assert isinstance(e.value, ZeroDivisionError)  # `except ZeroDivisionError` still catches it
    sub = Subset(Items(items), [5, 9])
    with pytest.raises(SampleError, match="sample 1 of a subset of Items") as e:
        list(DataLoader(sub, batch_size=2))


def test_loader_error_names_the_file_through_subsets(tmp_path):
    (tmp_path / "c").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "c" / "a.png")
    (tmp_path / "c" / "b.png").write_bytes(b"\x89PNG broken")
    ds = Subset(ImageFolder(tmp_path), [1, 0])
    with pytest.raises(SampleError) as e:
        list(DataLoader(ds, batch_size=2))
    assert e.value.path.endswith("b.png") and "b.png" in str(e.value)


def test_collate_differing_shapes_names_the_dataset_index():
    items = [np.zeros((4, 4), np.uint8)] * 3 + [np.zeros((5, 4), np.uint8)]
    with pytest.raises(SampleError, match="sample 3 .*differing shapes") as e:
        list(DataLoader(Items(items), batch_size=4))
    assert e.value.index == 3


@pytest.mark.parametrize("shape,dtype,scale", [
    ((28, 28), np.uint8, 255), ((1, 28, 28), np.uint8, 255), ((28, 28, 1), np.uint8, 255),
    ((3, 8, 8), np.uint8, 255), ((8, 8, 3), np.uint8, 255), ((1, 28, 28), np.float32, 1),
    ((28, 28), np.float64, 1), ((28, 28, 1), np.float32, 1), ((28, 28), np.int64, 255),
    ((1, 28, 28), np.uint16, 4095), ((28, 28), np.uint16, 65535), ((28, 28), np.bool_, 1)])
def test_collate_gives_float32_nchw_for_every_layout_and_dtype(shape, dtype, scale):
    rng = np.random.default_rng(0)
    top = {np.uint8: 255, np.int64: 255, np.uint16: scale, np.bool_: 1}.get(dtype, 1)
    base = rng.integers(0, top + 1, (28, 28)) if dtype not in (np.float32, np.float64) else rng.random((28, 28))
    base.flat[0] = top  # the maximum is present, so the detected depth is the intended one
    hw = base[:8, :8] if 8 in shape else base
    if len(shape) == 2:
        a = hw
    elif shape[0] in (1, 3):
        a = np.stack([hw] * shape[0])
    else:
        a = np.stack([hw] * shape[2], axis=2)
    x, y = default_collate([(a.astype(dtype), 0), (a.astype(dtype), 1)])
    c = 3 if 3 in shape else 1
    assert x.dtype == np.float32 and x.shape == (2, c) + hw.shape
    np.testing.assert_allclose(x[1, 0], hw.astype(np.float64) / scale, rtol=1e-6)


def test_collate_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match=r"values in \[-1, 3\]"):
        default_collate([(np.array([[-1, 3], [0, 0]], np.int32), 0)])
    with pytest.raises(ValueError, match=r"shape \(5, 6, 7\).*neither"):
        default_collate([(np.zeros((5, 6, 7), np.uint8), 0)])
    x, _ = default_collate([(np.zeros((5, 6, 7), np.float32), 0)])  # float feature maps: kept as CHW
    assert x.shape == (1, 5, 6, 7)
