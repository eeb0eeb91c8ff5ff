"""Figures for data, training and predictions, saved straight to PNG.

Every function takes `path`, creates its parent folders, writes the PNG atomically and
returns the path as a string. Figures are built with matplotlib's object API on the Agg
canvas, never through pyplot, so nothing needs a display and no global figure state is left
behind (the figure is freed when the function returns). Pass `dataset="PneumoniaMNIST"`
(any name) to show the dataset in the figure's title.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .metrics import _to_numpy, roc_auc, roc_curve

PathLike = str | os.PathLike
GOOD, BAD, NEUTRAL = "#1a9850", "#d73027", "#9e9e9e"  # right / wrong / other


# ---- shared helpers ---------------------------------------------------------------------
def _figure(width: float, height: float) -> Figure:
    """A figure with constrained layout (no overlapping titles) on an Agg canvas."""
    try:
        fig = Figure(figsize=(width, height), layout="constrained")
    except TypeError:  # matplotlib < 3.6
        fig = Figure(figsize=(width, height), constrained_layout=True)
    FigureCanvasAgg(fig)
    return fig


def _title(fig: Figure, title: str | None, dataset: str | None) -> None:
    parts = [p for p in (title, dataset) if p]
    if parts:
        fig.suptitle(" \u2014 ".join(parts), fontsize=14, fontweight="bold")


def _save(fig: Figure, path: PathLike, dpi: int = 110) -> str:
    """Write the PNG via a temp file in the same folder, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a unique name in the same folder (os.replace is atomic only within one filesystem);
    # open() rather than mkstemp so the file gets the usual umask permissions, not 0600
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            fig.savefig(f, format="png", dpi=dpi, facecolor="white")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    finally:
        fig.clear()  # drop the artists now rather than at garbage collection
    return str(path)


def _to_images(images: Any, who: str) -> list[np.ndarray]:
    """NCHW/NHWC/NHW arrays (or a list of images) -> list of (H, W) or (H, W, 3) floats in [0, 1].

    uint8 is divided by 255; float images outside [0, 1] (e.g. standardised) are min-max
    scaled per image so they stay viewable.
    """
    if isinstance(images, (list, tuple)):
        items = [_to_numpy(im) for im in images]
    else:
        arr = _to_numpy(images)
        if arr.ndim == 2:  # a single (H, W) image
            arr = arr[None]
        if arr.ndim not in (3, 4):
            raise ValueError(f"{who}: images must be (N, C, H, W), (N, H, W, C) or (N, H, W); got shape {arr.shape}")
        items = list(arr)
    out = []
    for im in items:
        if im.ndim == 3 and im.shape[0] in (1, 3) and im.shape[-1] not in (1, 3):
            im = im.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
        if im.ndim == 3 and im.shape[-1] == 1:
            im = im[..., 0]
        if im.ndim not in (2, 3) or (im.ndim == 3 and im.shape[-1] != 3):
            raise ValueError(f"{who}: cannot show an image of shape {im.shape}; expected (H, W), "
                             f"(1 or 3, H, W) or (H, W, 1 or 3)")
        if im.dtype == np.uint8:
            im = im / 255.0
        else:
            im = im.astype(np.float64)
            lo, hi = im.min(), im.max()
            if lo < 0.0 or hi > 1.0:
                im = (im - lo) / (hi - lo) if hi > lo else np.zeros_like(im)
        out.append(im)
    return out


def _show(ax: Any, image: np.ndarray) -> None:
    """An image without ticks; grayscale gets the gray colormap on a fixed [0, 1] scale."""
    if image.ndim == 2:
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
    else:
        ax.imshow(np.clip(image, 0.0, 1.0))
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)


def _name(label: Any, class_names: Sequence[str] | None) -> str:
    label = int(label)
    if class_names is not None and 0 <= label < len(class_names):
        return str(class_names[label])
    return str(label)


def _grid(images: list[np.ndarray], titles: Sequence[str], colors: Sequence[str | None], ncols: int,
          title: str | None, dataset: str | None, path: PathLike, cell: float = 1.9) -> str:
    """Lay images out in rows of ncols, each with a small (optionally coloured) caption."""
    n = len(images)
    if n == 0:
        raise ValueError("no images to plot")
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = _figure(cell * ncols, cell * nrows + (0.5 if title or dataset else 0.1))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.axis("off")
    for ax, im, text, color in zip(axes, images, titles, colors):
        _show(ax, im)
        if text:
            ax.set_title(text, fontsize=9, color=color or "black", fontweight="bold" if color else "normal")
    _title(fig, title, dataset)
    return _save(fig, path)


def _check_len(who: str, **arrays: Any) -> int:
    """All named arrays must have the same first dimension; returns it."""
    sizes = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"{who}: lengths differ: " + ", ".join(f"{k}={s}" for k, s in sizes.items()))
    return next(iter(sizes.values()))


# ---- data -----------------------------------------------------------------------------------
def plot_class_distribution(counts_or_targets: Any, class_names: Sequence[str] | None, path: PathLike,
                            title: str = "Class distribution", dataset: str | None = None) -> str:
    """Bar chart of samples per class: targets (N,), {class: count}, or {split: targets (N,)} side by side."""
    data = counts_or_targets
    if isinstance(data, Mapping) and data and all(np.ndim(v) == 0 for v in data.values()):
        class_names = list(class_names or data.keys())  # {class name: count}
        splits = {"": np.array([data[c] for c in class_names], dtype=np.int64)}
    else:
        groups = data if isinstance(data, Mapping) else {"": data}
        num = len(class_names) if class_names is not None else None
        splits = {}
        for split, targets in groups.items():
            t = _to_numpy(targets).astype(np.int64).reshape(-1)
            if t.size and t.min() < 0:
                raise ValueError(f"plot_class_distribution: split {split!r} has negative labels")
            splits[split] = np.bincount(t, minlength=num or 0)
        c = max(len(v) for v in splits.values())
        splits = {k: np.pad(v, (0, c - len(v))) for k, v in splits.items()}
        if class_names is None:
            class_names = [str(i) for i in range(c)]
        elif c > len(class_names):
            raise ValueError(f"plot_class_distribution: labels go up to {c - 1} but only "
                             f"{len(class_names)} class_names were given")
    k, n_split = len(class_names), len(splits)
    fig = _figure(max(5.0, 1.3 * k * max(1, n_split) ** 0.5 + 2), 4.2)
    ax = fig.subplots()
    width = 0.8 / n_split
    tab10 = colormaps["tab10"]  # a list of 10 colours: tab10(i) is the i-th
    for i, (split, counts) in enumerate(splits.items()):
        xs = np.arange(k) + (i - (n_split - 1) / 2) * width
        bars = ax.bar(xs, counts, width * 0.95, color=tab10(i % 10), label=split or None)
        total = max(int(counts.sum()), 1)
        labels = [f"{c}\n{100 * c / total:.0f}%" for c in counts]
        ax.bar_label(bars, labels=labels, fontsize=8, padding=2)
    ax.set_xticks(np.arange(k), [str(c) for c in class_names], fontsize=11)
    ax.set_ylabel("images", fontsize=11)
    ax.margins(y=0.2)
    ax.spines[["top", "right"]].set_visible(False)
    if n_split > 1:
        ax.legend(fontsize=10, frameon=False)
    _title(fig, title, dataset)
    return _save(fig, path)


def plot_image_grid(images: Any, labels: Any, class_names: Sequence[str] | None, path: PathLike,
                    ncols: int = 8, title: str | None = "Samples", dataset: str | None = None,
                    max_images: int = 64) -> str:
    """Grid of images (N, C, H, W), (N, H, W, C) or (N, H, W), each captioned with its label (N,)."""
    ims = _to_images(images, "plot_image_grid")[:max_images]
    if labels is not None:
        _check_len("plot_image_grid", images=_to_images(images, "plot_image_grid"), labels=_to_numpy(labels))
        titles = [_name(lab, class_names) for lab in _to_numpy(labels)[:max_images]]
    else:
        titles = [""] * len(ims)
    return _grid(ims, titles, [None] * len(ims), ncols, title, dataset, path)


def plot_augmented_batch(images: Any, labels: Any, class_names: Sequence[str] | None, path: PathLike,
                         originals: Any = None, ncols: int = 8, title: str = "Augmented batch",
                         dataset: str | None = None) -> str:
    """An augmented batch (N, ...) as a grid; with `originals` (N, ...) each original sits above its augmentation."""
    if originals is None:
        return plot_image_grid(images, labels, class_names, path, ncols=ncols, title=title, dataset=dataset)
    aug, orig = _to_images(images, "plot_augmented_batch"), _to_images(originals, "plot_augmented_batch")
    labs = _to_numpy(labels) if labels is not None else None
    _check_len("plot_augmented_batch", images=aug, originals=orig, labels=labs)
    ims, titles, colors = [], [], []
    for start in range(0, len(aug), ncols):  # alternate one row of originals, one row of augmentations
        stop = min(start + ncols, len(aug))
        for row, tag in ((orig, "original"), (aug, "augmented")):
            for i in range(start, start + ncols):
                if i < stop:
                    ims.append(row[i])
                    name = _name(labs[i], class_names) if labs is not None else ""
                    titles.append(f"{name}\n{tag}" if name else tag)
                    colors.append(None if tag == "original" else "#3b5bdb")
                else:
                    ims.append(np.ones_like(row[0]))  # pad a short last row so rows stay paired
                    titles.append("")
                    colors.append(None)
    return _grid(ims, titles, colors, ncols, title, dataset, path)


# ---- training -------------------------------------------------------------------------------
def plot_history(history: Mapping[str, Sequence[float]], path: PathLike,
                 metrics: Sequence[str] = ("loss", "accuracy", "precision", "recall"),
                 title: str = "Training history", dataset: str | None = None) -> str:
    """Train vs validation curves per epoch, one panel per metric, from {'loss': [...], 'val_loss': [...]}.

    Metrics missing from `history` are skipped; the best validation epoch is marked.
    'lr' is drawn on a log scale.
    """
    shown = [m for m in metrics if m in history or f"val_{m}" in history]
    if not shown:
        raise ValueError(f"plot_history: none of {list(metrics)} in history (keys: {sorted(history)})")
    ncols = min(len(shown), 2 if len(shown) == 4 else 3)
    nrows = -(-len(shown) // ncols)
    fig = _figure(4.6 * ncols, 3.4 * nrows + 0.4)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes[len(shown):]:
        ax.axis("off")
    for ax, m in zip(axes, shown):
        for key, label, style in ((m, "train", "-"), (f"val_{m}", "validation", "-")):
            if key not in history:
                continue
            ys = np.asarray(history[key], dtype=np.float64)
            epochs = np.arange(1, len(ys) + 1)
            line, = ax.plot(epochs, ys, style, marker="o" if len(ys) <= 30 else None, ms=3, lw=2, label=label)
            if key.startswith("val_") and np.isfinite(ys).any():
                best = int(np.nanargmin(ys) if "loss" in m else np.nanargmax(ys))
                ax.plot(epochs[best], ys[best], "*", ms=14, color=line.get_color(), zorder=5,
                        label=f"best {ys[best]:.3g} (epoch {best + 1})")
        if m == "lr":
            ax.set_yscale("log")
        ax.set_title(m.replace("_", " "), fontsize=12)
        ax.set_xlabel("epoch", fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(fontsize=8, frameon=False)
    _title(fig, title, dataset)
    return _save(fig, path)


# ---- evaluation -------------------------------------------------------------------------------
def plot_confusion_matrix(cm: Any, class_names: Sequence[str] | None, path: PathLike, normalize: bool = False,
                          title: str = "Confusion matrix", dataset: str | None = None) -> str:
    """Heat map of a (C, C) confusion matrix (rows true, columns predicted), counts written in each cell.

    normalize=True colours by the fraction of each true class (recall on the diagonal) and
    writes that fraction above the count.
    """
    cm = _to_numpy(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"plot_confusion_matrix: cm must be square (C, C), got shape {cm.shape}")
    c = cm.shape[0]
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(c)]
    if len(names) != c:
        raise ValueError(f"plot_confusion_matrix: {len(names)} class_names for a {c}x{c} matrix")
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=np.float64), where=rows != 0)
    values = frac if normalize else cm
    side = 2.2 + 1.1 * c
    fig = _figure(side + 1.4, side)
    ax = fig.subplots()
    img = ax.imshow(values, cmap="Blues", vmin=0, vmax=1.0 if normalize else max(float(cm.max()), 1.0))
    fig.colorbar(img, ax=ax, shrink=0.8, label="fraction of true class" if normalize else "images")
    for i in range(c):
        for j in range(c):
            text = f"{frac[i, j]:.1%}\n({int(cm[i, j])})" if normalize else f"{int(cm[i, j])}"
            dark = values[i, j] > 0.55 * (1.0 if normalize else max(float(cm.max()), 1.0))
            ax.text(j, i, text, ha="center", va="center", fontsize=12 if c <= 4 else 9,
                    color="white" if dark else "black", fontweight="bold")
    ax.set_xticks(range(c), names, fontsize=11, rotation=30 if c > 3 else 0)
    ax.set_yticks(range(c), names, fontsize=11)
    ax.set_xlabel("predicted", fontsize=12)
    ax.set_ylabel("true", fontsize=12)
    _title(fig, title, dataset)
    return _save(fig, path)


def _class_probs(probs: Any, who: str) -> np.ndarray:
    """(N,) or (N, 1) P(positive) -> (N, 2); (N, C) class probabilities pass through."""
    p = _to_numpy(probs).astype(np.float64)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1)  # (N,) P(positive) -> (N, 2)
    if p.ndim != 2:
        raise ValueError(f"{who}: probs must be (N,) P(positive) or (N, C) class probabilities, got shape {p.shape}")
    return p


def decide(probs: Any, threshold: float | None = None, who: str = "decide") -> np.ndarray:
    """The predicted class (N,) from probabilities, by the rule the metrics use.

    Binary (N,) or (N, 2): class 1 when P(positive) >= threshold (default 0.5, as
    `metrics.binary_metrics`); (N, C) with C > 2: the arg-max (a threshold is then an error).
    """
    p = _class_probs(probs, who)
    if p.shape[1] == 2:
        return (p[:, 1] >= (0.5 if threshold is None else float(threshold))).astype(np.int64)
    if threshold is not None:
        raise ValueError(f"{who}: a threshold applies to binary probabilities, got {p.shape[1]} classes")
    return p.argmax(axis=1).astype(np.int64)


def plot_predictions(images: Any, y_true: Any, y_pred: Any, class_names: Sequence[str] | None, path: PathLike,
                     probs: Any = None, ncols: int = 6, title: str = "Predictions", dataset: str | None = None,
                     max_images: int = 36, threshold: float | None = None) -> str:
    """Images captioned "true / predicted" (N,), green when right, red when wrong, with the confidence if probs given.

    y_pred=None derives the predictions from `probs` by `decide(probs, threshold)`, the rule
    of the metrics; pass the same `threshold` the metrics used (it is shown in the title).
    """
    ims = _to_images(images, "plot_predictions")
    if y_pred is None:
        if probs is None:
            raise ValueError("plot_predictions: give y_pred, or probs (and threshold) to derive it from")
        y_pred = decide(probs, threshold, "plot_predictions")
    elif threshold is not None and probs is not None:
        derived = decide(probs, threshold, "plot_predictions")
        if len(derived) == len(_to_numpy(y_pred).reshape(-1)) and np.any(derived != _to_numpy(y_pred).reshape(-1)):
            raise ValueError(f"plot_predictions: y_pred disagrees with probs at threshold {threshold:g}; "
                             f"pass y_pred=None to derive it from probs")
    t, p = _to_numpy(y_true).astype(np.int64).reshape(-1), _to_numpy(y_pred).astype(np.int64).reshape(-1)
    _check_len("plot_predictions", images=ims, y_true=t, y_pred=p, probs=None if probs is None else _to_numpy(probs))
    conf = _class_probs(probs, "plot_predictions")[np.arange(len(p)), p] if probs is not None else None
    titles, colors = [], []
    for i in range(min(len(ims), max_images)):
        text = f"{_name(t[i], class_names)} / {_name(p[i], class_names)}"
        if conf is not None:
            text += f"\n(p={conf[i]:.2f})"
        titles.append(text)
        colors.append(GOOD if t[i] == p[i] else BAD)
    rule = f", threshold {threshold:.2f}" if threshold is not None else ""
    caption = f"{title}  (captions: true / predicted{rule})"
    return _grid(ims[:max_images], titles, colors, ncols, caption, dataset, path, cell=2.2)


def plot_probability_bars(images: Any, probs: Any, class_names: Sequence[str] | None, path: PathLike,
                          y_true: Any = None, title: str = "Predicted probabilities", dataset: str | None = None,
                          max_images: int = 6, threshold: float | None = None) -> str:
    """One row per image: the image, then a bar per class of its probabilities (N, C), or (N,) P(positive).

    The predicted class (coloured green when right, red when wrong) is `decide(probs, threshold)`:
    for binary probabilities pass the threshold the metrics used (default 0.5); it is drawn
    as a dashed line on the positive class's bar.
    """
    ims = _to_images(images, "plot_probability_bars")[:max_images]
    p = _class_probs(probs, "plot_probability_bars")
    t = _to_numpy(y_true).astype(np.int64).reshape(-1) if y_true is not None else None
    _check_len("plot_probability_bars", images=_to_images(images, "plot_probability_bars"), probs=p, y_true=t)
    predicted = decide(p, threshold, "plot_probability_bars")
    c = p.shape[1]
    names = [_name(i, class_names) for i in range(c)]
    n = len(ims)
    fig = _figure(7.0, 1.1 + (1.9 if c <= 3 else 0.45 * c + 0.9) * n)
    axes = fig.subplots(n, 2, squeeze=False, gridspec_kw={"width_ratios": [1, 1.8]})
    for i in range(n):
        _show(axes[i, 0], ims[i])
        pred = int(predicted[i])
        if t is not None:
            axes[i, 0].set_title(f"true: {names[t[i]] if t[i] < c else t[i]}", fontsize=10)
        right = t is None or t[i] == pred
        colors = [(GOOD if right else BAD) if k == pred else NEUTRAL for k in range(c)]
        ax = axes[i, 1]
        bars = ax.barh(np.arange(c), p[i], color=colors)
        ax.bar_label(bars, labels=[f"{v:.1%}" for v in p[i]], fontsize=9, padding=3)
        if c == 2 and threshold is not None:  # the decision line on the positive class's bar
            ax.plot([threshold, threshold], [0.55, 1.45], "--", color="black", lw=1.2)
            ax.text(threshold + 0.01, 0.5, f"threshold {threshold:.2f}", fontsize=7, ha="left", va="center")
        ax.set_yticks(np.arange(c), names, fontsize=10)
        ax.invert_yaxis()  # first class on top, like a list
        ax.set_xlim(0, 1.18)
        ax.set_xticks([0, 0.5, 1.0])
        ax.tick_params(axis="x", labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    _title(fig, title, dataset)
    return _save(fig, path)


def _roc_axes(ax: Any) -> None:
    """The unit square, labels, grid and legend every ROC figure shares."""
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate (1 - specificity)", fontsize=11)
    ax.set_ylabel("true positive rate (sensitivity)", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)


def plot_roc_curve(y_true: Any, prob: Any, path: PathLike, auc: float | None = None,
                   threshold: float | None = 0.5, title: str = "ROC curve", dataset: str | None = None,
                   label: str = "model") -> str:
    """ROC of binary labels (N,) against P(positive) (N,), with the chance diagonal, AUC in the legend,
    and the operating point at `threshold` marked (None to leave it out)."""
    fpr, tpr, _ = roc_curve(y_true, prob, drop_intermediate=False)
    auc = roc_auc(y_true, prob) if auc is None else auc
    fig = _figure(5.2, 5.0)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], "--", color=NEUTRAL, lw=1.5, label="chance (AUC = 0.5)")
    ax.plot(fpr, tpr, lw=2.5, color="#2f6eba", label=f"{label} (AUC = {auc:.3f})")
    if threshold is not None:
        t, p = _to_numpy(y_true).reshape(-1), _to_numpy(prob).reshape(-1)
        called = p >= threshold
        sens = called[t == 1].mean() if np.any(t == 1) else np.nan
        fall_out = called[t == 0].mean() if np.any(t == 0) else np.nan
        ax.plot(fall_out, sens, "o", ms=9, color=BAD, label=f"threshold {threshold:g}: "
                f"sens {sens:.2f}, spec {1 - fall_out:.2f}")
    _roc_axes(ax)
    _title(fig, title, dataset)
    return _save(fig, path)


def plot_gradcam(images: Any, heatmaps: Any, path: PathLike, titles: Sequence[str] | None = None,
                 alpha: float = 0.4, ncols: int = 4, title: str = "Grad-CAM", dataset: str | None = None) -> str:
    """Heat maps (N, h, w) in [0, 1] drawn in jet over the images (N, ...); maps are stretched to the image size.

    A constant map (the model's output does not depend on that image, e.g. an untrained model)
    is labelled as such on the image instead of drawn as a uniform tint."""
    ims = _to_images(images, "plot_gradcam")
    maps = _to_numpy(heatmaps).astype(np.float64)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"plot_gradcam: heatmaps must be (N, h, w), got shape {maps.shape}")
    _check_len("plot_gradcam", images=ims, heatmaps=maps, titles=titles)
    n = len(ims)
    if n == 0:
        raise ValueError("plot_gradcam: no images given")
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = _figure(2.6 * ncols + 0.8, 2.6 * nrows + 0.5)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.axis("off")
    overlay = None
    for i, (ax, im) in enumerate(zip(axes, ims)):
        gray = im if im.ndim == 2 else im.mean(axis=2)  # colour would fight with the heat map
        _show(ax, gray)
        h, w = gray.shape
        overlay = ax.imshow(maps[i], cmap="jet", vmin=0.0, vmax=1.0, alpha=alpha, interpolation="bilinear",
                            extent=(-0.5, w - 0.5, h - 0.5, -0.5))  # stretch the map over the image
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=10)
        if not np.ptp(maps[i]) > 0:  # say so rather than show a uniform tint that looks like a bug
            ax.text(0.5, 0.5, "flat map: no evidence\n(the output does not\nchange with this image)",
                    transform=ax.transAxes, ha="center", va="center", fontsize=9, color="white",
                    bbox={"facecolor": "black", "alpha": 0.6, "edgecolor": "none"})
    assert overlay is not None  # n >= 1, so the loop drew at least one map
    fig.colorbar(overlay, ax=list(axes[:n]), shrink=0.8, label="class evidence")
    _title(fig, title, dataset)
    return _save(fig, path)
