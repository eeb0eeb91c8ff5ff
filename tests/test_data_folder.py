"""ImageFolder on small folders made here: junk files, odd modes, a truncated JPEG, class names with spaces."""
import io
import warnings

import numpy as np
import pytest
from PIL import Image

from minicnn.data import ImageFolder, ImageLoadError, load_image


def save(path, array, fmt=None, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    img.save(path, format=fmt)


def grey(seed, h=16, w=20):
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


@pytest.fixture
def covid_like(tmp_path):
    """3 classes (one name with a space), mixed JPEG/PNG, grey and colour, plus junk to ignore."""
    root = tmp_path / "train"
    for i in range(3):
        save(root / "Covid" / f"{i:02d}.jpeg", grey(i))
    save(root / "Normal" / "a.PNG", np.stack([grey(5)] * 3, axis=2))  # upper-case extension, RGB
    save(root / "Normal" / "sub" / "b.jpg", grey(6))  # nested folders are searched too
    save(root / "Viral Pneumonia" / "v.png", np.dstack([grey(7)] * 3 + [np.full((16, 20), 255, np.uint8)]))  # RGBA
    (root / "Normal" / "notes.txt").write_text("not an image")
    (root / "Normal" / ".DS_Store").write_bytes(b"\0\0junk")
    save(root / "Normal" / "._a.PNG", grey(8))  # macOS resource-fork twin: hidden
    save(root / "__MACOSX" / "Covid" / "x.jpeg", grey(9))
    save(root / "Normal" / "__MACOSX" / "c.jpeg", grey(9))
    save(root / "Covid" / ".thumbnails" / "d.jpeg", grey(9))
    save(root / ".hidden_class" / "y.jpeg", grey(10))
    return root


def test_classes_samples_and_junk(covid_like):
    ds = ImageFolder(covid_like)
    assert ds.classes == ["Covid", "Normal", "Viral Pneumonia"]
    assert ds.class_to_idx == {"Covid": 0, "Normal": 1, "Viral Pneumonia": 2}
    names = [p.split("train")[1] for p, _ in ds.samples]
    assert names == ["/Covid/00.jpeg", "/Covid/01.jpeg", "/Covid/02.jpeg", "/Normal/a.PNG",
                     "/Normal/sub/b.jpg", "/Viral Pneumonia/v.png"]
    assert ds.targets.tolist() == [0, 0, 0, 1, 1, 2] and ds.targets.dtype == np.int64


def test_modes_are_normalised_to_hwc_uint8(covid_like):
    keep = ImageFolder(covid_like)
    shapes = [keep[i][0].shape for i in range(len(keep))]
    assert shapes == [(16, 20, 1)] * 3 + [(16, 20, 3), (16, 20, 1), (16, 20, 3)]  # RGBA -> RGB
    assert all(keep[i][0].dtype == np.uint8 for i in range(len(keep)))
    assert {ImageFolder(covid_like, grayscale=True)[i][0].shape for i in range(6)} == {(16, 20, 1)}
    assert {ImageFolder(covid_like, grayscale=False)[i][0].shape for i in range(6)} == {(16, 20, 3)}
    png = ImageFolder(covid_like, grayscale=True)[3][0]  # lossless: equals the grey source exactly
    assert np.array_equal(png[:, :, 0], grey(5))


def test_sixteen_bit_png_scaled_not_clipped(tmp_path):
    a = (np.arange(16 * 20, dtype=np.uint16).reshape(16, 20) * 200)
    Image.fromarray(a).save(tmp_path / "x.png")
    out = load_image(tmp_path / "x.png")
    want = np.rint(a * (255 / 65535)).astype(np.uint8)  # max 63800 needs all 16 bits
    assert out.shape == (16, 20, 1) and np.array_equal(out[:, :, 0], want)


def test_transform_is_applied(covid_like):
    ds = ImageFolder(covid_like, grayscale=True, transform=lambda a: a[:4, :5])
    assert ds[0][0].shape == (4, 5, 1) and ds[4][1] == 1


def truncated_jpeg(path):
    buf = io.BytesIO()
    Image.fromarray(grey(1, 64, 64)).save(buf, format="JPEG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def test_truncated_image_raises_with_path(tmp_path):
    save(tmp_path / "A" / "good.jpeg", grey(0))
    truncated_jpeg(tmp_path / "A" / "half.jpeg")
    (tmp_path / "A" / "zfake.png").write_bytes(b"definitely not a png")
    ds = ImageFolder(tmp_path)
    with pytest.raises(ImageLoadError, match=r"cannot read image .*half\.jpeg"):
        ds[1]
    with pytest.raises(ImageLoadError, match=r"zfake\.png"):
        ds[2]


def test_skip_mode_warns_once_and_substitutes_next_sample(tmp_path):
    truncated_jpeg(tmp_path / "A" / "a_half.jpeg")
    save(tmp_path / "A" / "b_good.jpeg", grey(0))
    ds = ImageFolder(tmp_path, on_error="skip")
    with pytest.warns(UserWarning, match="a_half.jpeg"):
        img, label = ds[0]
    assert np.array_equal(img, ds[1][0]) and label == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second visit must not warn again
        ds[0]
    assert len(ds) == 2 and any("a_half" in p for p in ds.bad_files)


def test_empty_and_missing_folders_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        ImageFolder(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no class sub-folders"):
        ImageFolder(tmp_path)
    save(tmp_path / "A" / "x.jpeg", grey(0))
    (tmp_path / "B").mkdir()
    (tmp_path / "B" / "readme.txt").write_text("hi")
    with pytest.raises(FileNotFoundError, match=r"class folder .*B holds no images"):
        ImageFolder(tmp_path)
    with pytest.raises(ValueError, match="on_error"):
        ImageFolder(tmp_path, on_error="ignore")
