"""minicnn.train.report: evaluation results and figures of a classifier, one- and multi-output."""
import numpy as np
import pytest

import minicnn
from minicnn import nn
from minicnn.train import NonFiniteLossError, report


class Fixed(nn.Module):
    """Returns preset outputs batch by batch (logits or, with sigmoid=True, probabilities)."""

    def __init__(self, outputs, sigmoid=False):
        super().__init__()
        self.outputs, self.i = outputs, 0
        self.output_is_probability = sigmoid

    def forward(self, x):
        out = self.outputs[self.i: self.i + x.shape[0]]
        self.i += x.shape[0]
        return minicnn.tensor(out)


def batches(y, bs=4, side=5):
    x = np.arange(len(y) * side * side, dtype=np.float32).reshape(len(y), 1, side, side)
    return [(x[i:i + bs], y[i:i + bs]) for i in range(0, len(y), bs)]


def test_multiclass_result_matches_argmax_and_keeps_images_of_every_class():
    rng = np.random.default_rng(0)
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2])
    logits = rng.standard_normal((len(y), 3)).astype(np.float32)
    res = report.evaluate_classifier(Fixed(logits), batches(y), ["a", "b", "c"], keep_images=6)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(res["probs"], p, rtol=1e-5)
    np.testing.assert_array_equal(res["y_pred"], p.argmax(1))
    assert res["metrics"]["accuracy"] == pytest.approx(np.mean(p.argmax(1) == y))
    assert res["confusion_matrix"].sum() == len(y) and res["confusion_matrix"].shape == (3, 3)
    # two of each class, not the first six (all class a)
    assert sorted(y[res["image_index"]].tolist()) == [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(res["images"][:, 0, 0, 0], np.array(res["image_index"]) * 25.0)


def test_binary_result_uses_the_threshold_everywhere(tmp_path):
    y = np.array([0, 0, 1, 1, 1, 0])
    prob = np.array([[0.1], [0.6], [0.55], [0.9], [0.4], [0.2]], dtype=np.float32)
    res = report.evaluate_classifier(Fixed(prob, sigmoid=True), batches(y), ["neg", "pos"], threshold=0.58)
    np.testing.assert_array_equal(res["y_pred"], [0, 1, 0, 1, 0, 0])
    np.testing.assert_allclose(res["probs"][:, 1], prob[:, 0])
    assert res["confusion_matrix"].tolist() == [[2, 1], [2, 1]]
    summary = report.summary_metrics(res)
    assert summary["n"] == 6 and summary["accuracy"] == pytest.approx(0.5)
    written = report.save_standard_plots(tmp_path, res, ["neg", "pos"], history={"loss": [1.0, 0.5],
                                         "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.6], "val_accuracy": [0.4, 0.5]})
    names = sorted(p.split("/")[-1] for p in written)
    assert names == ["confusion_matrix.png", "predictions.png", "probabilities.png", "roc_curve.png",
                     "training_curves.png"]


def test_non_finite_output_names_split_and_batch():
    y = np.array([0, 1, 0, 1, 0, 1])
    logits = np.zeros((6, 2), np.float32)
    logits[5, 1] = np.nan
    with pytest.raises(NonFiniteLossError, match="validation") as e:
        report.evaluate_classifier(Fixed(logits), batches(y), ["a", "b"], split="validation")
    assert e.value.batch == 2


def test_format_table_and_stage_figure(tmp_path):
    table = report.format_table([{"model": "x", "parameters": 1234567, "acc": 0.5}, {"model": "yy", "acc": None}])
    lines = table.splitlines()
    assert lines[0].split("|")[1].strip() == "model" and "1,234,567" in lines[2] and "n/a" in lines[3]
    assert len({len(line) for line in lines}) == 1  # aligned
    img = np.tile(np.arange(64, dtype=np.uint8), (64, 1))
    path = report.plot_stages({"a": [img, img], "b": [255 - img, img]}, tmp_path / "s.png", hist=("a", "b"))
    assert (tmp_path / "s.png").stat().st_size > 2000 and path.endswith("s.png")
    with pytest.raises(ValueError, match="same number"):
        report.plot_stages({"a": [img], "b": [img, img]}, tmp_path / "t.png")
