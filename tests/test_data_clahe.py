"""CLAHE against its loop reference, connected components against a flood fill, Otsu, LungCrop."""
from collections import deque

import numpy as np
import pytest

from minicnn.data import transforms as T


@pytest.mark.parametrize("shape, clip, grid", [((37, 53), 2.0, (8, 8)), ((32, 32), 0.0, (4, 4)),
                                               ((20, 45), 40.0, (3, 5)), ((9, 9), 1.0, (1, 1))])
def test_clahe_matches_naive_on_random_images(shape, clip, grid):
    img = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    assert np.array_equal(T.clahe(img, clip, grid), T.clahe_naive(img, clip, grid))


def test_clahe_matches_naive_on_a_smooth_low_contrast_image():
    y, x = np.mgrid[0:48, 0:40]
    img = (100 + 20 * np.sin(x / 7.0) * np.cos(y / 5.0)).astype(np.uint8)
    out = T.clahe(img, 3.0, (4, 4))
    assert np.array_equal(out, T.clahe_naive(img, 3.0, (4, 4)))
    assert np.ptp(out) > 2 * np.ptp(img)  # it does stretch the contrast


def test_clahe_without_clipping_on_one_tile_is_histogram_equalisation():
    img = np.random.default_rng(0).integers(50, 100, (16, 16), dtype=np.uint8)
    cdf = np.cumsum(np.bincount(img.ravel(), minlength=256))
    assert np.array_equal(T.clahe(img, 0.0, (1, 1)), np.round(cdf[img] * 255 / img.size).astype(np.uint8))


def test_clahe_transform_keeps_kind_and_rejects_bad_input():
    img = np.random.default_rng(1).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    out = T.CLAHE(2.0, (2, 2))(img)
    green = np.ascontiguousarray(img[:, :, 1])
    assert out.shape == img.shape and np.array_equal(out[:, :, 1], T.clahe(green, 2.0, (2, 2)))
    with pytest.raises(TypeError, match="uint8 \\(H, W\\)"):
        T.clahe(img.astype(np.float32)[:, :, 0])


def flood_fill_labels(mask, connectivity):
    """Obvious reference: breadth-first search from each unvisited pixel in raster order."""
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if connectivity == 8:
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    labels = np.zeros(mask.shape, np.int32)
    n = 0
    for start in zip(*np.nonzero(mask)):
        if labels[start]:
            continue
        n += 1
        labels[start] = n
        queue = deque([start])
        while queue:
            y, x = queue.popleft()
            for dy, dx in steps:
                v, u = y + dy, x + dx
                if 0 <= v < mask.shape[0] and 0 <= u < mask.shape[1] and mask[v, u] and not labels[v, u]:
                    labels[v, u] = n
                    queue.append((v, u))
    return labels, n


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("density", [0.3, 0.55, 0.7])
def test_components_match_flood_fill(connectivity, density):
    mask = np.random.default_rng(int(density * 100)).random((40, 50)) < density
    got, n = T.label_components(mask, connectivity)
    want, m = flood_fill_labels(mask, connectivity)
    assert n == m and np.array_equal(got, want)  # both number regions by first pixel in raster order


def test_components_edge_cases():
    assert T.label_components(np.zeros((3, 4), bool))[1] == 0
    diag = np.eye(4, dtype=bool)
    assert T.label_components(diag, 8)[1] == 1 and T.label_components(diag, 4)[1] == 4
    u = np.array([[1, 0, 1], [1, 0, 1], [1, 1, 1]], bool)  # joined only at the bottom row
    assert T.label_components(u, 4)[1] == 1


def test_otsu_splits_two_levels():
    img = np.array([10] * 50 + [200] * 50, np.uint8)
    t = T.otsu_threshold(img)
    assert 10 <= t < 200


def fake_xray(seed=0):
    """A bright 'body' with darker 'lungs' inside black margins, plus a small bright burnt-in letter."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 15, (100, 120), dtype=np.uint8)
    img[20:85, 30:100] = 170
    img[30:70, 40:60] = 90
    img[30:70, 70:90] = 90
    img[5:9, 5:9] = 255
    return img


def test_lung_crop_removes_margins_and_ignores_specks():
    img = fake_xray()
    assert T.foreground_box(img) == (20, 30, 85, 100)
    out = T.LungCrop(margin=0.0)(img[:, :, None])
    assert out.shape == (65, 70, 1) and np.array_equal(out[:, :, 0], img[20:85, 30:100])
    with_margin = T.LungCrop(margin=0.05)(img)
    assert with_margin.shape == (75, 82)
    blank = np.zeros((10, 10), np.uint8)
    assert T.LungCrop()(blank) is blank
