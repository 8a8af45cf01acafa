"""The embedded trained ResNet-20: the integer pipeline stays within 0.5 accuracy points of the
float model on real Fashion-MNIST test images (the full 10k set: benchmarks/export)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pesto import artifact as A
from pesto.reference.network import normalize, predict

SUBSET = 1000


@pytest.fixture(scope="module")
def trained():
    from pesto.train.checkpoint import default_checkpoint_path
    path = default_checkpoint_path()
    if not path.is_file():
        pytest.skip(f"the embedded checkpoint {path} is not there yet (helper A ships it)")
    return path


def test_integer_pipeline_within_half_a_point(trained, fmnist, tmp_path):
    from pesto.export import export_model, load_model
    model, info = load_model(str(trained))
    art = export_model((model, info))                       # default calibration: Fashion-MNIST train
    art = A.load(A.save(art, tmp_path / "r20.pesto"))       # through the file, as the board gets it
    images, labels = fmnist[1][:SUBSET], fmnist[2][:SUBSET]
    with torch.no_grad():
        float_pred = np.concatenate([model(torch.from_numpy(normalize(art, images[i:i + 250]))).argmax(1).numpy()
                                     for i in range(0, SUBSET, 250)])
    int_pred = predict(art, images, batch_size=250)
    acc_float = 100 * (float_pred == labels).mean()
    acc_int = 100 * (int_pred == labels).mean()
    assert acc_float > 50, f"the embedded model is not trained ({acc_float:.1f}%)"
    assert abs(acc_int - acc_float) <= 0.5, (acc_float, acc_int)
    assert (int_pred == float_pred).mean() >= 0.99
