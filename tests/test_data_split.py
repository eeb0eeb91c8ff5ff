"""Subset, ConcatDataset, random_split, stratified train_test_split, class weights, oversampling, sampler."""
import numpy as np
import pytest

from minicnn.data import (
    ConcatDataset,
    DataLoader,
    Subset,
    WeightedRandomSampler,
    class_weights,
    get_targets,
    oversample,
    random_split,
    train_test_split,
)


class Labels:
    """A dataset whose image is its own index, so tests can see which samples went where."""

    def __init__(self, targets):
        self.targets = np.asarray(targets, dtype=np.int64)

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return np.full((2, 2, 1), i % 256, np.uint8), int(self.targets[i])


def imbalanced(n0=30, n1=90):
    return Labels([0] * n0 + [1] * n1)


def test_subset_and_concat():
    ds = imbalanced(3, 5)
    sub = Subset(ds, [7, 0, 2], transform=lambda a: a + 1)
    assert len(sub) == 3 and sub.targets.tolist() == [1, 0, 0] and sub[0][0][0, 0, 0] == 8
    cat = ConcatDataset([ds, sub])
    assert len(cat) == 11 and cat[8][0][0, 0, 0] == 8 and cat[-1][1] == 0
    assert get_targets(cat).tolist() == ds.targets.tolist() + [1, 0, 0]
    with pytest.raises(IndexError, match="Subset: indices must lie in"):
        Subset(ds, [8])


def test_get_targets_falls_back_to_items():
    plain = [(None, 2), (None, 3)]  # any sequence of (image, label) works as a dataset
    assert get_targets(plain).tolist() == [2, 3]


def test_random_split_counts_fractions_and_seed():
    ds = imbalanced(10, 10)
    a, b = random_split(ds, [15, 5], seed=1)
    assert len(a) == 15 and len(b) == 5 and not set(a.indices) & set(b.indices)
    assert np.array_equal(random_split(ds, [15, 5], seed=1)[1].indices, b.indices)
    assert [len(s) for s in random_split(ds, [0.5, 0.3, 0.2], seed=0)] == [10, 6, 4]
    with pytest.raises(ValueError, match="sum to the dataset size 20"):
        random_split(ds, [10, 5])


@pytest.mark.parametrize("test_size", [0.1, 0.2, 0.3, 17])
def test_stratified_split_keeps_class_shares(test_size):
    ds = imbalanced(30, 90)
    train, test = train_test_split(ds, test_size=test_size, stratify=True, seed=3)
    expected = int(np.ceil(test_size * 120)) if isinstance(test_size, float) else test_size
    assert len(test) == expected and len(train) + len(test) == 120
    assert not set(train.indices) & set(test.indices)
    share = test.targets.mean()
    assert abs(share - 0.75) <= 1 / len(test)  # 75% class 1, up to rounding of one sample
    again = train_test_split(ds, test_size=test_size, seed=3)[1]
    assert np.array_equal(again.indices, test.indices)
    assert not np.array_equal(train_test_split(ds, test_size=test_size, seed=4)[1].indices, test.indices)


def test_split_rejects_empty_sides():
    with pytest.raises(ValueError, match="at least one sample on each side"):
        train_test_split(imbalanced(2, 2), test_size=0.0)


def test_class_weights_keras_formula():
    w = class_weights([0] * 1349 + [1] * 3883)
    assert w[0] == pytest.approx(5232 / (2 * 1349)) and w[1] == pytest.approx(5232 / (2 * 3883))
    assert class_weights(imbalanced(30, 90)) == {0: 2.0, 1: 2 / 3}


def test_oversample_balances_with_augmented_copies():
    ds = imbalanced(30, 70)
    bal = oversample(ds, transform=lambda a: a + 100, seed=0)
    y = get_targets(bal)
    assert np.bincount(y).tolist() == [70, 70]
    copies = Subset(bal, np.arange(100, 140))
    assert all(copies[i][0][0, 0, 0] >= 100 for i in range(40))  # the copies went through the transform
    originals = bal.datasets[1].indices
    assert np.bincount(originals, minlength=30)[:30].min() >= 1  # every minority sample copied at least once


def test_weighted_sampler_balances_batches():
    ds = imbalanced(20, 180)
    sampler = WeightedRandomSampler.from_targets(ds.targets, num_samples=4000)
    loader = DataLoader(ds, batch_size=500, sampler=sampler, seed=0)
    labels = np.concatenate([y for _, y in loader])
    assert len(loader) == 8 and abs(labels.mean() - 0.5) < 0.05
    again = np.concatenate([y for _, y in DataLoader(ds, batch_size=500, sampler=sampler, seed=0)])
    assert np.array_equal(labels, again)
    with pytest.raises(ValueError, match="not all zero"):
        WeightedRandomSampler([0, 0])
