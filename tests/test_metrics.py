"""Metrics against hand-computed cases: ties, empty classes, perfect/inverted scores, thresholds."""
import warnings

import numpy as np
import pytest

from minicnn import metrics as M

# scikit-learn's documented roc_curve example, worked by hand below
Y4 = np.array([0, 0, 1, 1])
P4 = np.array([0.1, 0.4, 0.35, 0.8])


def brute_auc(y, p):
    """P(score_pos > score_neg) + 0.5 P(tie), counting every pair."""
    pos, neg = p[y == 1][:, None], p[y == 0][None, :]
    return ((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size)


# ---- AUC ---------------------------------------------------------------------------------
def test_auc_hand_computed_with_tie():
    # pairs (pos, neg): 0.5>0.1 (1), 0.5=0.5 (1/2), 0.9>both (2) -> 3.5 / 4
    assert M.roc_auc([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9]) == pytest.approx(0.875)
    assert M.roc_auc(Y4, P4) == pytest.approx(0.75)


def test_auc_all_tied_is_half_perfect_is_one_inverted_is_zero():
    y = np.array([0, 1, 0, 1, 1])
    assert M.roc_auc(y, np.full(5, 0.3)) == pytest.approx(0.5)
    assert M.roc_auc(y, y * 0.8 + 0.1) == pytest.approx(1.0)
    assert M.roc_auc(y, 1 - (y * 0.8 + 0.1)) == pytest.approx(0.0)


def test_auc_matches_pair_count_and_roc_area_with_many_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.random(300) * 0.5 + 0.3 * y, 1)  # coarse rounding -> many ties
    auc = M.roc_auc(y, p)
    assert auc == pytest.approx(brute_auc(y, p))
    for drop in (True, False):
        fpr, tpr, _ = M.roc_curve(y, p, drop_intermediate=drop)
        area = np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)  # trapezoids
        assert area == pytest.approx(auc)


def test_auc_undefined_without_both_classes_is_nan_and_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(M.roc_auc([1, 1, 1], [0.2, 0.5, 0.9]))
        assert np.isnan(M.roc_auc([0, 0], [0.2, 0.5]))
        assert np.isnan(M.binary_metrics([0, 0], [0.2, 0.7])["auc"])


def test_auc_accepts_column_vector():
    assert M.roc_auc(Y4[:, None], P4[:, None]) == pytest.approx(0.75)


# ---- ROC curve and thresholds -------------------------------------------------------------
def test_roc_curve_sklearn_example():
    fpr, tpr, thr = M.roc_curve(Y4, P4)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(thr, [np.inf, 0.8, 0.4, 0.35, 0.1])


def test_roc_curve_drops_only_collinear_points():
    y, p = np.array([0, 0, 0, 1, 1, 1]), np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    fpr, tpr, thr = M.roc_curve(y, p, drop_intermediate=False)
    assert len(thr) == 7  # inf + six distinct scores
    fpr, tpr, thr = M.roc_curve(y, p)
    np.testing.assert_allclose(np.c_[fpr, tpr], [[0, 0], [0, 1], [1, 1]])
    np.testing.assert_allclose(thr, [np.inf, 0.7, 0.1])


def test_roc_curve_point_k_uses_greater_or_equal():
    fpr, tpr, thr = M.roc_curve(Y4, P4, drop_intermediate=False)
    for f, t, th in zip(fpr, tpr, thr):
        pred = P4 >= th
        assert t == np.mean(pred[Y4 == 1]) and f == np.mean(pred[Y4 == 0])


@pytest.mark.parametrize("criterion, expected", [("youden", 0.8), ("accuracy", 0.8), ("f1", 0.35)])
def test_best_threshold_hand_computed(criterion, expected):
    # at t=0.8: TP1 FP0 (J=.5, acc=.75, F1=.667); t=0.35: TP2 FP1 (J=.5 tie -> higher t, acc .75, F1=.8)
    assert M.best_threshold(Y4, P4, criterion) == pytest.approx(expected)


def test_best_threshold_can_call_nothing_positive():
    y, p = np.array([0, 0, 0, 1]), np.array([0.9, 0.1, 0.2, 0.3])
    t = M.best_threshold(y, p, "accuracy")  # all-negative gets 3/4, the best available
    assert t > 0.9 and M.binary_metrics(y, p, t)["accuracy"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="criterion"):
        M.best_threshold(y, p, "auc")


# ---- confusion matrix and averages ------------------------------------------------------------
YT = np.array([0, 1, 2, 2, 1, 0])
YP = np.array([0, 2, 2, 2, 1, 1])


def test_confusion_matrix_multiclass_hand_computed():
    np.testing.assert_array_equal(M.confusion_matrix(YT, YP), [[1, 1, 0], [0, 1, 1], [0, 0, 2]])
    cm = M.confusion_matrix([0, 1], [1, 1], num_classes=4)  # unseen classes get empty rows
    assert cm.shape == (4, 4) and cm[0, 1] == 1 and cm[1, 1] == 1 and cm.sum() == 2
    with pytest.raises(ValueError, match="num_classes=2"):
        M.confusion_matrix([0, 3], [0, 1], num_classes=2)


def test_multiclass_averages_hand_computed():
    # per class precision (1, 1/2, 2/3), recall (1/2, 1/2, 1), support (2, 2, 2)
    np.testing.assert_allclose(M.precision(YT, YP, average=None), [1, 0.5, 2 / 3])
    np.testing.assert_allclose(M.recall(YT, YP, average=None), [0.5, 0.5, 1])
    assert M.precision(YT, YP, average="macro") == pytest.approx((1 + 0.5 + 2 / 3) / 3)
    assert M.recall(YT, YP, average="weighted") == pytest.approx(4 / 6)
    for fn in (M.precision, M.recall, M.f1_score):  # single-label micro == accuracy
        assert fn(YT, YP, average="micro") == pytest.approx(4 / 6)
    f1 = 2 * np.array([1, .5, 2 / 3]) * np.array([.5, .5, 1]) / (np.array([1, .5, 2 / 3]) + np.array([.5, .5, 1]))
    assert M.f1_score(YT, YP, average="macro") == pytest.approx(f1.mean())
    # specificity of class 0: TN=4 of negatives 4 -> 1; class 1: FP 1 of 4 -> .75; class 2: FP 1 -> .75
    np.testing.assert_allclose(M.specificity(YT, YP, average=None), [1, 0.75, 0.75])
    with pytest.raises(ValueError, match="average='binary' needs two classes"):
        M.precision(YT, YP)


def test_binary_precision_recall_specificity():
    y, p = [1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 1, 0, 0, 0]  # TP2 FN1 FP1 TN3
    assert M.precision(y, p) == pytest.approx(2 / 3)
    assert M.recall(y, p) == pytest.approx(2 / 3) == M.sensitivity(y, p)
    assert M.specificity(y, p) == pytest.approx(3 / 4)
    assert M.precision(y, p, pos_label=0) == pytest.approx(3 / 4)
    assert M.accuracy(y, p) == pytest.approx(5 / 7)


def test_empty_class_gives_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert M.precision([0, 0, 0], [0, 0, 0]) == 0.0  # no predicted positives
        assert M.recall([0, 0, 0], [0, 0, 0]) == 0.0     # no actual positives
        assert M.f1_score([0, 0, 0], [0, 0, 0]) == 0.0
        assert M.recall([0, 1], [0, 1], average=None, num_classes=3)[2] == 0.0
        m = M.binary_metrics([1, 1], [0.1, 0.2])
        assert m["precision"] == 0.0 and m["specificity"] == 0.0 and m["recall"] == 0.0


def test_classification_report_structure_and_values():
    r = M.classification_report(YT, YP, class_names=["a", "b", "c"])
    assert r["a"]["precision"] == 1.0 and r["a"]["recall"] == 0.5 and r["c"]["support"] == 2
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["macro avg"]["recall"] == pytest.approx(2 / 3) and r["weighted avg"]["support"] == 6


# ---- one-call summaries ---------------------------------------------------------------------
def test_binary_metrics_perfect_and_inverted():
    y = np.array([0, 1, 1, 0, 1])
    good = M.binary_metrics(y, np.where(y == 1, 0.9, 0.2))
    assert good["accuracy"] == good["f1"] == good["auc"] == 1.0 and good["fn"] == 0
    bad = M.binary_metrics(y, np.where(y == 1, 0.2, 0.9))
    assert bad["accuracy"] == bad["auc"] == bad["recall"] == bad["specificity"] == 0.0


def test_binary_metrics_threshold_is_inclusive():
    m = M.binary_metrics([1, 0], [0.5, 0.49])
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (1, 0, 1, 0)
    assert M.binary_metrics([1, 0], [0.5, 0.49], threshold=0.6)["tp"] == 0


def test_multiclass_metrics_and_ovr_auc():
    probs = np.array([[.7, .2, .1], [.1, .3, .6], [.1, .1, .8], [.2, .2, .6], [.2, .6, .2], [.3, .6, .1]])
    m = M.multiclass_metrics(YT, probs)  # argmax reproduces YP
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(M.precision(YT, YP, average="macro"))
    per = [M.roc_auc((YT == c).astype(int), probs[:, c]) for c in range(3)]
    assert m["auc"] == pytest.approx(np.mean(per)) == M.roc_auc(YT, probs)
    # class 2 never occurs: its AUC is undefined and left out of the mean
    y2 = np.array([0, 1, 0, 1, 1, 0])
    per2 = M.roc_auc_ovr(y2, probs, average=None)
    assert np.isnan(per2[2]) and M.roc_auc_ovr(y2, probs) == pytest.approx(np.mean(per2[:2]))


# ---- validation ---------------------------------------------------------------------------
def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match=r"\(3,\) and \(2,\)"):
        M.confusion_matrix([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match=r"must have shape \(3,\).*\(2,\)"):
        M.roc_auc([0, 1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match=r"\[0, 1\].*1\.5"):
        M.binary_metrics([0, 1], [0.2, 1.5])
    with pytest.raises(ValueError, match="nan"):
        M.roc_auc([0, 1], [np.nan, 0.3])
    with pytest.raises(ValueError, match="binary"):
        M.binary_metrics([0, 2], [0.2, 0.3])
    with pytest.raises(ValueError, match="integer"):
        M.accuracy([0.5, 1], [0, 1])
    with pytest.raises(ValueError, match="negative"):
        M.accuracy([-1, 1], [0, 1])


# ---- streaming tracker ------------------------------------------------------------------------
def test_tracker_over_batches_equals_one_shot():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 50)
    p = np.clip(0.35 * y + rng.random(50) * 0.65, 0, 1)
    tr = M.BinaryMetrics(threshold=0.4)
    for i in range(0, 50, 16):
        tr.update(y[i:i + 16], p[i:i + 16, None], loss=float(i))
    out, ref = tr.compute(), M.binary_metrics(y, p, 0.4)
    assert {k: out[k] for k in ref} == pytest.approx(ref)
    assert out["loss"] == pytest.approx((0 * 16 + 16 * 16 + 32 * 16 + 48 * 2) / 50)  # size-weighted
    assert len(tr) == 50
    tr.reset()
    with pytest.raises(RuntimeError, match="before any update"):
        tr.compute()


def test_multiclass_tracker_and_shape_checks():
    probs = np.eye(3)[[0, 1, 2, 2]] * 0.8 + 0.2 / 3
    tr = M.MetricTracker(num_classes=3)
    tr.update([0, 1], probs[:2])
    tr.update([2, 2], probs[2:])
    assert tr.compute()["accuracy"] == 1.0
    with pytest.raises(ValueError, match="do not match earlier batches"):
        tr.update([0], np.array([0.3]))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        M.BinaryMetrics().update([0, 1], probs[:2])
