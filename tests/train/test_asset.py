"""The embedded default model: loads safely, is group-sparse, and classifies real images."""

import os

import pytest
import torch

from pesto import metrics
from pesto.data import load_splits, subset
from pesto.train.checkpoint import default_checkpoint_path, load_checkpoint, model_from_checkpoint


def test_embedded_model_is_a_small_group_sparse_wpc_resnet20():
    path = default_checkpoint_path()
    assert path.stat().st_size < 2_000_000
    ckpt = load_checkpoint(path)
    assert ckpt["model"] == {"name": "resnet20", "in_channels": 1, "num_classes": 10, "input_size": 28}
    assert ckpt["quant"]["mode"] == "wpc" and ckpt["quant"]["cg"] == 16
    model = model_from_checkpoint(ckpt)
    m = metrics.model_metrics(model)
    assert m["group_sparsity"] >= 0.20  # the speedup must be visible on the accelerator
    assert m["group_sparsity"] == pytest.approx(ckpt["history"][-1]["group_sparsity"])
    assert m["compression_rate"] >= 20


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"), reason="no Fashion-MNIST")
def test_embedded_model_accuracy_on_real_test_images():
    ckpt = load_checkpoint(default_checkpoint_path())
    model = model_from_checkpoint(ckpt)
    _, test = load_splits("fashion-mnist", augment=False)
    test = subset(test, 1000, seed=0)
    x = torch.stack([test[i][0] for i in range(len(test))])
    y = torch.stack([test[i][1] for i in range(len(test))])
    with torch.no_grad():
        acc = 100.0 * float((model(x).argmax(1) == y).float().mean())
    assert acc == pytest.approx(ckpt["history"][-1]["test_acc"], abs=3.0)  # recorded on all 10000
