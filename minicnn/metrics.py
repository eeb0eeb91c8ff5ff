"""Classification metrics in plain NumPy: confusion matrix, precision/recall/F1, ROC and AUC.

Conventions (documented once, used everywhere):
- `y_true` holds integer class labels (N,); binary labels are 0 (negative) and 1 (positive).
- Binary scores `prob` are P(class 1) in [0, 1], shape (N,) or (N, 1); a sample is called
  positive when `prob >= threshold`.
- Multi-class scores are an (N, C) probability matrix.
- A ratio whose denominator is zero (precision with no predicted positives, recall of a
  class with no samples, ...) is defined as 0.0, silently: small validation batches hit this
  all the time and a warning per batch helps nobody.
- ROC AUC needs both classes present; when one is missing it is undefined and returned as
  `nan` (no warning). One-vs-rest macro AUC averages only the classes where it is defined.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

AVERAGES = ("binary", "macro", "micro", "weighted", None)


# ---- input handling ---------------------------------------------------------------------
def _to_numpy(x: Any) -> np.ndarray:
    """Accept ndarrays, lists, minicnn Tensors (`.numpy()`) and CuPy arrays (`.get()`)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "numpy") and callable(x.numpy):
        return np.asarray(x.numpy())
    if hasattr(x, "get") and hasattr(x, "shape"):  # CuPy ndarray
        return np.asarray(x.get())
    return np.asarray(x)


def _labels(y: Any, name: str = "y_true") -> np.ndarray:
    """Validate integer class labels and return them as int64 (N,)."""
    a = _to_numpy(y)
    if a.ndim == 2 and a.shape[1] == 1:  # (N, 1) column from a dataset
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D class labels (N,), got shape {a.shape}")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ValueError(f"{name} must hold integer class labels; got non-integer values "
                             f"such as {a[(~np.isfinite(a)) | (a != np.round(a))][:3]}")
    elif a.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integer class labels, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if a.size and a.min() < 0:
        raise ValueError(f"{name} has negative labels (min {a.min()}); labels must be 0..C-1")
    return a


def _binary_labels(y: Any, name: str = "y_true") -> np.ndarray:
    a = _labels(y, name)
    if a.size and a.max() > 1:
        raise ValueError(f"{name} must be binary (0/1) here; got labels {np.unique(a)[:10]}")
    return a


def _probs(p: Any, name: str = "prob") -> np.ndarray:
    """Validate probabilities: finite and inside [0, 1]; returned as float64."""
    a = _to_numpy(p).astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains nan or inf")
    if a.size and (a.min() < 0.0 or a.max() > 1.0):
        raise ValueError(f"{name} must be probabilities in [0, 1], got values in [{a.min():.4g}, {a.max():.4g}]"
                         f" (apply sigmoid/softmax to the logits first)")
    return a


def _binary_probs(p: Any, n: int, name: str = "prob") -> np.ndarray:
    a = _probs(p, name)
    if a.ndim == 2 and a.shape[1] == 1:  # (N, 1) output of a one-logit model
        a = a[:, 0]
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match y_true, got {a.shape}")
    return a


def _same_length(a: np.ndarray, b: np.ndarray, names: str = "y_true, y_pred") -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{names} must have the same length, got shapes {a.shape} and {b.shape}")


def _ratio(num: ArrayLike, den: ArrayLike) -> np.ndarray:
    """num / den with 0.0 where den == 0 (see the module docstring)."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


# ---- confusion matrix and the ratios built on it -----------------------------------------
def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    """Counts (C, C), row = true class, column = predicted class; C = num_classes or max label + 1."""
    t, p = _labels(y_true), _labels(y_pred, "y_pred")
    _same_length(t, p)
    seen = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    c = seen if num_classes is None else int(num_classes)
    if seen > c:
        raise ValueError(f"labels go up to {seen - 1} but num_classes={c}")
    # each (true, pred) pair becomes one flat index into the C*C grid
    return np.bincount(t * c + p, minlength=c * c).reshape(c, c)  # (C, C)


def _per_class_counts(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(tp, fp, fn, tn), each (C,), treating every class in turn as 'positive'."""
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    tn = cm.sum() - tp - fp - fn
    return tp, fp, fn, tn


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of labels (N,) predicted right; 0.0 for empty input."""
    t, p = _labels(y_true), _labels(y_pred, "y_pred")
    _same_length(t, p)
    return float(np.mean(t == p)) if t.size else 0.0


def _averaged(kind: str, y_true: Any, y_pred: Any, average: str | None, num_classes: int | None,
              pos_label: int) -> Any:
    """Shared body of precision/recall/specificity/f1 for every averaging mode."""
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    cm = confusion_matrix(y_true, y_pred, num_classes)
    if average == "binary":
        if cm.shape[0] > 2:
            raise ValueError(f"average='binary' needs two classes but the labels have {cm.shape[0]}; "
                             f"use average='macro', 'micro' or 'weighted'")
        cm = np.pad(cm, ((0, 2 - cm.shape[0]), (0, 2 - cm.shape[0])))  # labels may be all 0
    tp, fp, fn, tn = _per_class_counts(cm)
    if average == "micro":  # pool the counts of all classes, then take one ratio
        tp, fp, fn, tn = tp.sum(), fp.sum(), fn.sum(), tn.sum()
    prec, rec, spec = _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    score = {"precision": prec, "recall": rec, "specificity": spec,
             "f1": _ratio(2 * prec * rec, prec + rec)}[kind]
    if average == "binary":
        return float(score[pos_label])
    if average == "micro":
        return float(score)
    if average == "macro":
        return float(score.mean())
    if average == "weighted":
        support = tp + fn
        return float((score * support).sum() / support.sum()) if support.sum() else 0.0
    return score  # average=None: one value per class, (C,)


def precision(y_true: Any, y_pred: Any, average: str | None = "binary", num_classes: int | None = None,
              pos_label: int = 1) -> Any:
    """TP / (TP + FP) of labels (N,); a float, or (C,) per class when average=None."""
    return _averaged("precision", y_true, y_pred, average, num_classes, pos_label)


def recall(y_true: Any, y_pred: Any, average: str | None = "binary", num_classes: int | None = None,
           pos_label: int = 1) -> Any:
    """TP / (TP + FN) of labels (N,), a.k.a. sensitivity; a float, or (C,) when average=None."""
    return _averaged("recall", y_true, y_pred, average, num_classes, pos_label)


sensitivity = recall


def specificity(y_true: Any, y_pred: Any, average: str | None = "binary", num_classes: int | None = None,
                pos_label: int = 1) -> Any:
    """TN / (TN + FP) of labels (N,): the recall of the negatives; float or (C,)."""
    return _averaged("specificity", y_true, y_pred, average, num_classes, pos_label)


def f1_score(y_true: Any, y_pred: Any, average: str | None = "binary", num_classes: int | None = None,
             pos_label: int = 1) -> Any:
    """Harmonic mean of precision and recall of labels (N,); float or (C,)."""
    return _averaged("f1", y_true, y_pred, average, num_classes, pos_label)


def classification_report(y_true: Any, y_pred: Any, class_names: Sequence[str] | None = None,
                          num_classes: int | None = None) -> dict:
    """Per-class precision/recall/specificity/f1/support for labels (N,), plus accuracy and averages.

    Shaped like scikit-learn's `output_dict=True`: {name: {...}, 'accuracy': float,
    'macro avg': {...}, 'weighted avg': {...}}.
    """
    if class_names is not None and num_classes is None:
        num_classes = len(class_names)
    cm = confusion_matrix(y_true, y_pred, num_classes)
    names = list(class_names) if class_names is not None else [str(i) for i in range(cm.shape[0])]
    if len(names) != cm.shape[0]:
        raise ValueError(f"got {len(names)} class_names for {cm.shape[0]} classes")
    tp, fp, fn, tn = _per_class_counts(cm)
    cols = {"precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn), "specificity": _ratio(tn, tn + fp)}
    cols["f1"] = _ratio(2 * cols["precision"] * cols["recall"], cols["precision"] + cols["recall"])
    support = tp + fn
    report: dict = {name: {**{k: float(v[i]) for k, v in cols.items()}, "support": int(support[i])}
                    for i, name in enumerate(names)}
    total = int(support.sum())
    report["accuracy"] = float(tp.sum() / total) if total else 0.0
    report["macro avg"] = {**{k: float(v.mean()) for k, v in cols.items()}, "support": total}
    report["weighted avg"] = {**{k: float((v * support).sum() / total) if total else 0.0 for k, v in cols.items()},
                              "support": total}
    return report


# ---- ranking metrics: ROC curve and AUC --------------------------------------------------
def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of x (N,), tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)                 # rank of the last member of each tie group
    mean_rank = last - (counts - 1) / 2.0    # mean of first..last ranks in the group
    return mean_rank[inverse.reshape(-1)]


def roc_auc(y_true: Any, prob: Any) -> float:
    """Area under the ROC curve for binary labels (N,) and scores (N,); nan if a class is missing.

    Computed as the Mann-Whitney statistic: the probability that a random positive scores
    above a random negative, a tie counting 1/2. For an (N, C) matrix this returns the
    one-vs-rest macro AUC (see `roc_auc_ovr`).
    """
    p_raw = _to_numpy(prob)
    if p_raw.ndim == 2 and p_raw.shape[1] > 1:
        return roc_auc_ovr(y_true, p_raw)
    t = _binary_labels(y_true)
    p = _binary_probs(p_raw, t.shape[0])
    n_pos = int(t.sum())
    n_neg = t.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = _average_ranks(p)[t == 1].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc_ovr(y_true: Any, probs: Any, average: str | None = "macro") -> Any:
    """One-vs-rest AUC of labels (N,) against probabilities (N, C): macro mean, or (C,) if average=None.

    Classes absent from y_true (or present in every sample) have no AUC (nan) and are left out
    of the mean; the mean is nan when no class has one.
    """
    t = _labels(y_true)
    p = _probs(probs, "probs")
    if p.ndim != 2 or p.shape[0] != t.shape[0]:
        raise ValueError(f"probs must be (N, C) with N={t.shape[0]} to match y_true, got {p.shape}")
    if t.size and t.max() >= p.shape[1]:
        raise ValueError(f"y_true has label {t.max()} but probs only has {p.shape[1]} columns")
    per_class = np.array([roc_auc((t == c).astype(np.int64), p[:, c]) for c in range(p.shape[1])])
    if average is None:
        return per_class
    if average != "macro":
        raise ValueError(f"roc_auc_ovr supports average='macro' or None, got {average!r}")
    ok = ~np.isnan(per_class)
    return float(per_class[ok].mean()) if ok.any() else float("nan")


def _cumulative_counts(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholds at each distinct score (descending) and the TP/FP counts for `p >= threshold`."""
    order = np.argsort(-p, kind="stable")
    p_sorted, t_sorted = p[order], t[order]
    # the last index of each run of equal scores closes one threshold
    ends = np.r_[np.nonzero(np.diff(p_sorted))[0], p_sorted.size - 1]
    tps = np.cumsum(t_sorted)[ends]
    fps = (ends + 1) - tps
    return p_sorted[ends], tps, fps


def roc_curve(y_true: Any, prob: Any, drop_intermediate: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points for binary labels (N,) and scores (N,): (fpr, tpr, thresholds), each (K,).

    Same semantics as scikit-learn: thresholds decrease, the first is +inf (nothing called
    positive, so the curve starts at (0, 0)), and point k uses `prob >= thresholds[k]`.
    `drop_intermediate` removes points on straight segments, which does not change the
    area. tpr (fpr) is all nan when there are no positives (negatives).
    """
    t = _binary_labels(y_true)
    p = _binary_probs(prob, t.shape[0])
    if t.size == 0:
        raise ValueError("roc_curve needs at least one sample")
    thresholds, tps, fps = _cumulative_counts(t, p)
    tps, fps = np.r_[0, tps], np.r_[0, fps]
    thresholds = np.r_[np.inf, thresholds]
    if drop_intermediate and tps.size > 2:
        # keep the ends and every corner: a point whose neighbours are not collinear with it
        corner = (np.diff(tps, 2) != 0) | (np.diff(fps, 2) != 0)
        keep = np.r_[True, corner, True]
        tps, fps, thresholds = tps[keep], fps[keep], thresholds[keep]
    n_pos, n_neg = tps[-1], fps[-1]
    tpr = tps / n_pos if n_pos else np.full(tps.shape, np.nan)
    fpr = fps / n_neg if n_neg else np.full(fps.shape, np.nan)
    return fpr.astype(np.float64), tpr.astype(np.float64), thresholds


def best_threshold(y_true: Any, prob: Any, criterion: str = "youden") -> float:
    """The cut-off on scores (N,) that maximises a criterion over labels (N,); use as `prob >= t`.

    criterion: 'youden' (sensitivity + specificity - 1), 'f1', or 'accuracy'. Candidates are
    the distinct scores plus one value just above the largest (call nothing positive); ties
    go to the higher threshold.
    """
    t = _binary_labels(y_true)
    p = _binary_probs(prob, t.shape[0])
    if t.size == 0:
        raise ValueError("best_threshold needs at least one sample")
    thresholds, tp, fp = _cumulative_counts(t, p)
    above_max = np.nextafter(thresholds[0], np.inf)
    thresholds, tp, fp = np.r_[above_max, thresholds], np.r_[0, tp], np.r_[0, fp]
    n_pos, n_neg = tp[-1], fp[-1]
    fn, tn = n_pos - tp, n_neg - fp
    if criterion == "youden":
        score = _ratio(tp, tp + fn) + _ratio(tn, tn + fp) - 1.0
    elif criterion == "f1":
        score = _ratio(2 * tp, 2 * tp + fp + fn)
    elif criterion == "accuracy":
        score = (tp + tn) / t.size
    else:
        raise ValueError(f"criterion must be 'youden', 'f1' or 'accuracy', got {criterion!r}")
    return float(thresholds[int(np.argmax(score))])  # argmax takes the first, i.e. highest, of ties


# ---- one-call summaries ----------------------------------------------------------------
def binary_metrics(y_true: Any, prob: Any, threshold: float = 0.5) -> dict:
    """All binary metrics for labels (N,) and P(positive) (N,), calling `prob >= threshold` positive.

    Returns plain floats/ints: accuracy, precision, recall (= sensitivity), specificity, f1,
    auc (nan if one class is missing), tp, fp, tn, fn and the threshold used.
    """
    t = _binary_labels(y_true)
    p = _binary_probs(prob, t.shape[0])
    pred = (p >= threshold).astype(np.int64)
    tp, fp = int(np.sum((pred == 1) & (t == 1))), int(np.sum((pred == 1) & (t == 0)))
    fn, tn = int(np.sum((pred == 0) & (t == 1))), int(np.sum((pred == 0) & (t == 0)))
    prec, rec = float(_ratio(tp, tp + fp)), float(_ratio(tp, tp + fn))
    return {
        "accuracy": (tp + tn) / t.size if t.size else 0.0,
        "precision": prec,
        "recall": rec,
        "specificity": float(_ratio(tn, tn + fp)),
        "f1": float(_ratio(2 * prec * rec, prec + rec)),
        "auc": roc_auc(t, p) if t.size else float("nan"),
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "threshold": float(threshold),
    }


def multiclass_metrics(y_true: Any, probs: Any) -> dict:
    """Metrics for labels (N,) and class probabilities (N, C), predicting the argmax.

    'precision'/'recall'/'f1'/'specificity' are macro averages (so the keys match
    `binary_metrics`); '_micro' and '_weighted' variants are included; 'auc' is the
    one-vs-rest macro AUC.
    """
    t = _labels(y_true)
    p = _probs(probs, "probs")
    if p.ndim != 2 or p.shape[0] != t.shape[0]:
        raise ValueError(f"probs must be (N, C) with N={t.shape[0]} to match y_true, got {p.shape}")
    c = p.shape[1]
    pred = p.argmax(axis=1)
    out: dict = {"accuracy": accuracy(t, pred)}
    for kind in ("precision", "recall", "f1", "specificity"):
        out[kind] = _averaged(kind, t, pred, "macro", c, 1)
        out[kind + "_micro"] = _averaged(kind, t, pred, "micro", c, 1)
        out[kind + "_weighted"] = _averaged(kind, t, pred, "weighted", c, 1)
    out["auc"] = roc_auc_ovr(t, p) if t.size else float("nan")
    return out


# ---- streaming accumulation for training loops --------------------------------------------
class MetricTracker:
    """Collects labels and probabilities batch by batch; `compute()` gives the epoch's metrics.

    Binary when `num_classes` is None or 2 with (B,)/(B, 1) probabilities, multi-class for
    (B, C) probabilities. AUC needs every score, so the scores are stored (N floats per
    class, small next to the images). Pass `loss=` to `update` to also get the mean loss.
    """

    def __init__(self, num_classes: int | None = None, threshold: float = 0.5):
        self.num_classes = num_classes
        self.threshold = threshold
        self.reset()

    def reset(self) -> None:
        """Forget everything seen (call at the start of each epoch)."""
        self._y: list[np.ndarray] = []
        self._p: list[np.ndarray] = []
        self._loss_sum = 0.0
        self._loss_n = 0

    def update(self, y_true: Any, prob: Any, loss: float | None = None) -> None:
        """Add one batch: labels (B,) and probabilities (B,), (B, 1) or (B, C); loss is the batch mean."""
        t = _labels(y_true)
        p = _probs(prob)
        if p.ndim == 2 and p.shape[1] == 1:
            p = p[:, 0]
        if p.shape[0] != t.shape[0]:
            raise ValueError(f"batch has {t.shape[0]} labels but probabilities of shape {p.shape}")
        if self._p and p.shape[1:] != self._p[0].shape[1:]:
            raise ValueError(f"probabilities of shape {p.shape} do not match earlier batches "
                             f"(shape (B,) + {self._p[0].shape[1:]})")
        self._y.append(t)
        self._p.append(p)
        if loss is not None:
            self._loss_sum += float(_to_numpy(loss)) * t.shape[0]  # weight by batch size
            self._loss_n += t.shape[0]

    def __len__(self) -> int:
        return sum(y.shape[0] for y in self._y)

    def compute(self) -> dict:
        """Metrics over everything since `reset()` (plus 'loss' when losses were given)."""
        if not self._y:
            raise RuntimeError("MetricTracker.compute() called before any update()")
        y, p = np.concatenate(self._y), np.concatenate(self._p)
        binary = p.ndim == 1
        if binary and self.num_classes not in (None, 2):
            raise ValueError(f"num_classes={self.num_classes} but the probabilities are 1-D (binary)")
        if not binary and self.num_classes not in (None, p.shape[1]):
            raise ValueError(f"num_classes={self.num_classes} but the probabilities have {p.shape[1]} columns")
        out = binary_metrics(y, p, self.threshold) if binary else multiclass_metrics(y, p)
        if self._loss_n:
            out["loss"] = self._loss_sum / self._loss_n
        return out


class BinaryMetrics(MetricTracker):
    """A `MetricTracker` for one-output (sigmoid) models; rejects (B, C) probabilities."""

    def __init__(self, threshold: float = 0.5):
        super().__init__(num_classes=2, threshold=threshold)

    def update(self, y_true: Any, prob: Any, loss: float | None = None) -> None:
        """Add labels (B,) in {0, 1} and P(positive) of shape (B,) or (B, 1)."""
        t = _binary_labels(y_true)
        super().update(t, _binary_probs(prob, t.shape[0]), loss)
