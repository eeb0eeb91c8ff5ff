"""The end of a tutorial run: evaluate a classifier on a split, draw the standard figures, compare models.

Shared by the example scripts so each of them ends in three lines::

    res = report.evaluate_classifier(model, test_loader, class_names, device=args.device)
    report.save_standard_plots(args.out, res, class_names, history=history, dataset="...")
    cli.write_run_summary(args.out, hyper=args, metrics=report.summary_metrics(res))

Works for one-output (sigmoid / one logit) and C-output (softmax / logits) models alike:
one-output probabilities P(class 1) are widened to two columns [1 - p, p], so every result has
`probs` of shape (N, C) and the figures use the same decision rule as the numbers.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import plots
from ..autograd import Tensor, no_grad
from ..backend import to_device
from ..metrics import binary_metrics, classification_report, confusion_matrix, multiclass_metrics
from ..nn.module import Module
from .callbacks import non_finite_error
from .loop import _split_batch, to_probabilities

PathLike = str | os.PathLike


# ---- numbers ---------------------------------------------------------------------------------
def evaluate_classifier(model: Module, loader: Iterable, class_names: Sequence[str], *, device: str = "cpu",
                        threshold: float = 0.5, keep_images: int = 24, split: str = "test") -> dict[str, Any]:
    """Run `model` (eval mode, no gradients) over (images, labels) batches; returns a result dict.

    Keys: y_true (N,), probs (N, C), y_pred (N,), metrics (accuracy, precision, recall, f1,
    specificity, auc; macro averages for C > 2), per_class (classification_report),
    confusion_matrix (C, C) rows true, images (K, ch, H, W): up to `keep_images` inputs, as
    many of each class as that allows, for the figures, and image_index (K,): their positions,
    threshold (binary models: predicted class 1 when P(class 1) >= threshold).
    NaN/Inf in the outputs raises NonFiniteLossError naming `split` and the batch.
    """
    c = len(class_names)
    if c < 2:
        raise ValueError(f"evaluate_classifier: need at least 2 class names, got {list(class_names)}")
    model.eval()
    ys: list[np.ndarray] = []
    ps: list[np.ndarray] = []
    kept: list[np.ndarray] = []
    kept_at: list[int] = []
    quota = np.full(c, -(-keep_images // c))  # images still wanted per class
    seen = 0
    with no_grad():
        for b, batch in enumerate(loader):
            x, y = _split_batch(batch)
            yb = np.asarray(to_device(y, "cpu")).reshape(-1).astype(np.int64)
            xb = np.asarray(to_device(x, "cpu"))
            for j, label in enumerate(yb):
                if 0 <= label < c and quota[label] > 0 and len(kept) < keep_images:
                    quota[label] -= 1
                    kept.append(xb[j])
                    kept_at.append(seen + j)
            seen += len(yb)
            ys.append(yb)
            prob = to_probabilities(model(Tensor(to_device(x, device))), model)
            if not np.isfinite(prob).all():
                raise non_finite_error("the model output", prob[~np.isfinite(prob)].flat[0], split, 0, b + 1, "")
            ps.append(prob)
    if not ys:
        raise ValueError("evaluate_classifier: the loader yielded no batches")
    y_true, p = np.concatenate(ys), np.concatenate(ps)
    if p.ndim == 1:  # one output: P(class 1) (N,) -> (N, 2)
        if c != 2:
            raise ValueError(f"evaluate_classifier: the model has one output but {c} class names were given")
        m = binary_metrics(y_true, p, threshold)
        probs = np.stack([1.0 - p, p], axis=1)
        y_pred = (p >= threshold).astype(np.int64)
    else:
        if p.shape[1] != c:
            raise ValueError(f"evaluate_classifier: the model gives {p.shape[1]} outputs for {c} class names")
        m = multiclass_metrics(y_true, p)
        m = {k: m[k] for k in ("accuracy", "precision", "recall", "f1", "specificity", "auc")}
        probs, y_pred = p, p.argmax(axis=1)
    return {"y_true": y_true, "probs": probs, "y_pred": y_pred, "metrics": m, "threshold": float(threshold),
            "per_class": classification_report(y_true, y_pred, class_names),
            "confusion_matrix": confusion_matrix(y_true, y_pred, num_classes=c),
            "images": np.stack(kept) if kept else np.zeros((0,)), "image_index": np.array(kept_at, dtype=np.int64),
            "class_names": list(class_names)}


def summary_metrics(result: Mapping[str, Any], keys: Sequence[str] = ("accuracy", "precision", "recall", "f1",
                                                                      "specificity", "auc")) -> dict[str, Any]:
    """The JSON-ready part of an `evaluate_classifier` result: chosen metrics, confusion matrix, per class, n."""
    out: dict[str, Any] = {k: float(result["metrics"][k]) for k in keys if k in result["metrics"]}
    out["n"] = int(len(result["y_true"]))
    out["confusion_matrix"] = np.asarray(result["confusion_matrix"]).tolist()
    out["per_class"] = {k: v for k, v in result["per_class"].items() if k in result["class_names"]}
    return out


# ---- figures -------------------------------------------------------------------------------------
def plot_pred_gt_grid(images: Any, y_true: Any, y_pred: Any, class_names: Sequence[str], path: PathLike,
                      probs: Any = None, ncols: int = 6, title: str = "Pred | GT",
                      dataset: str | None = None, max_images: int = 24) -> str:
    """Images (N, ...) captioned "Pred: <predicted> | GT: <true>" (green right, red wrong), with the
    predicted class's probability from probs (N, C) when given."""
    ims = plots._to_images(images, "plot_pred_gt_grid")[:max_images]
    t = np.asarray(y_true).astype(np.int64).reshape(-1)[: len(ims)]
    p = np.asarray(y_pred).astype(np.int64).reshape(-1)[: len(ims)]
    if len(t) != len(ims) or len(p) != len(ims):
        raise ValueError(f"plot_pred_gt_grid: {len(ims)} images but {len(t)} labels and {len(p)} predictions")
    conf = None if probs is None else np.asarray(probs, dtype=np.float64)[np.arange(len(p)), p]
    titles, colors = [], []
    for i in range(len(ims)):
        pred = plots._name(p[i], class_names) + ("" if conf is None else f" ({conf[i]:.2f})")
        titles.append(f"Pred: {pred}\nGT: {plots._name(t[i], class_names)}")
        colors.append(plots.GOOD if t[i] == p[i] else plots.BAD)
    return plots._grid(ims, titles, colors, ncols, title, dataset, path, cell=2.3)


def plot_stages(stages: Mapping[str, Sequence[Any]], path: PathLike, hist: Sequence[str] = (),
                title: str = "Preprocessing", dataset: str | None = None) -> str:
    """One row per preprocessing stage ({stage name: [image, ...]}, the same images in every row,
    uint8 or [0, 1] floats), plus a last row of grey-level histograms comparing the stages in `hist`."""
    names = list(stages)
    if not names:
        raise ValueError("plot_stages: no stages given")
    rows = {k: plots._to_images(list(v), "plot_stages") for k, v in stages.items()}
    n = len(rows[names[0]])
    if n == 0 or any(len(r) != n for r in rows.values()):
        raise ValueError(f"plot_stages: every stage needs the same number (> 0) of images, got "
                         f"{ {k: len(r) for k, r in rows.items()} }")
    for h in hist:
        if h not in rows:
            raise ValueError(f"plot_stages: histogram of unknown stage {h!r}; stages are {names}")
    nrows = len(names) + (1 if hist else 0)
    fig = plots._figure(2.3 * n + 0.6, 2.3 * nrows + 0.5)
    axes = fig.subplots(nrows, n, squeeze=False)
    for r, k in enumerate(names):
        for i, im in enumerate(rows[k]):
            plots._show(axes[r, i], im)
            axes[r, i].set_title(k, fontsize=9)
    colors = ("#2f6eba", "#d9480f", "#2b8a3e", "#862e9c")
    for i in range(n if hist else 0):
        ax = axes[-1, i]
        for j, k in enumerate(hist):
            ax.hist(rows[k][i].ravel() * 255, bins=32, range=(0, 255), alpha=0.45, color=colors[j % 4], label=k)
        ax.set_yticks([])
        ax.set_xlabel("grey level", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        if i == 0:
            ax.legend(fontsize=7, frameon=False)
    plots._title(fig, title, dataset)
    return plots._save(fig, path)


def save_standard_plots(out: PathLike, result: Mapping[str, Any], class_names: Sequence[str], *,
                        history: Mapping[str, Sequence[float]] | None = None, dataset: str | None = None,
                        curves: Sequence[str] = ("loss", "accuracy"), prefix: str = "",
                        bars: int = 6) -> list[str]:
    """Write the run's figures into `out`; returns their paths.

    training_curves.png (from `history`), confusion_matrix.png, predictions.png (a "Pred | GT"
    grid), probabilities.png (per-image confidence bars, `bars` images) and, for two classes,
    roc_curve.png. `prefix` goes in front of each file name (e.g. "tiny_cnn_").
    """
    out = Path(out)
    y, yp, probs, imgs = result["y_true"], result["y_pred"], result["probs"], result["images"]
    at = result.get("image_index", np.arange(len(imgs)))  # which samples the kept images are
    written = []
    if history:
        written.append(plots.plot_history(dict(history), out / f"{prefix}training_curves.png", metrics=curves,
                                          dataset=dataset))
    written.append(plots.plot_confusion_matrix(result["confusion_matrix"], class_names,
                                               out / f"{prefix}confusion_matrix.png", dataset=dataset))
    k = len(imgs)
    if k:
        written.append(plot_pred_gt_grid(imgs, y[at], yp[at], class_names, out / f"{prefix}predictions.png",
                                         probs=probs[at], dataset=dataset))
        pick = np.linspace(0, k - 1, min(bars, k)).round().astype(int)  # spread over the classes
        written.append(plots.plot_probability_bars(imgs[pick], probs[at[pick]], class_names,
                                                   out / f"{prefix}probabilities.png", y_true=y[at[pick]],
                                                   dataset=dataset))
    if len(class_names) == 2 and len(np.unique(y)) == 2:
        written.append(plots.plot_roc_curve(y, probs[:, 1], out / f"{prefix}roc_curve.png",
                                            auc=result["metrics"]["auc"], threshold=result["threshold"],
                                            dataset=dataset, label=f"P({class_names[1]})"))
    return written


def plot_roc_comparison(curves: Mapping[str, tuple[Any, Any]], path: PathLike, title: str = "ROC curves",
                        dataset: str | None = None) -> str:
    """One ROC curve per model from {model name: (labels (N,), P(class 1) (N,))}, AUC in the legend."""
    from ..metrics import roc_auc, roc_curve
    fig = plots._figure(5.4, 5.2)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], "--", color=plots.NEUTRAL, lw=1.5, label="chance (AUC = 0.5)")
    for label, (y, p) in curves.items():
        y, p = np.asarray(y).reshape(-1), np.asarray(p, dtype=np.float64).reshape(-1)
        if len(np.unique(y)) < 2:
            continue  # no ROC without both classes
        fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
        ax.plot(fpr, tpr, lw=2, label=f"{label} (AUC = {roc_auc(y, p):.3f})")
    plots._roc_axes(ax)
    plots._title(fig, title, dataset)
    return plots._save(fig, path)


# ---- comparing models --------------------------------------------------------------------------
def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows of {column: value} as a Markdown table; floats to 4 decimals, ints with thousands separators."""
    if not rows:
        return ""
    cols = list(columns) if columns is not None else list(rows[0])

    def cell(v: Any) -> str:
        if isinstance(v, bool) or v is None:
            return "n/a" if v is None else str(v)
        if isinstance(v, (int, np.integer)):
            return f"{int(v):,}"
        if isinstance(v, (float, np.floating)):
            return f"{float(v):.4f}" if np.isfinite(v) else "n/a"
        return str(v)

    body = [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(cols)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"  # noqa: E731
    return "\n".join([line(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(b) for b in body])


# ---- pretrained weights --------------------------------------------------------------------------
def load_weights(model: Module, path: PathLike, exclude: Sequence[str] = (), strict: bool = True) -> str:
    """Load a .safetensors/.pth file into `model` (see minicnn.weights.load_pretrained); returns the report.

    A file that does not fit raises DataError naming it, so the example's CLI turns it into
    one line and exit status 1.
    """
    from ..data.errors import DataError
    from ..weights import WeightsError, load_pretrained
    try:
        rep = load_pretrained(model, path, strict=strict, exclude=exclude)
    except (WeightsError, ValueError, KeyError) as e:
        raise DataError(f"--weights {os.fspath(path)}: {e}") from e
    return str(rep)
