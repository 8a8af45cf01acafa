"""Shared things of the transfer tests: a small ternary backbone (ResNet-20 on 12x12 crops, the one
the driver tests run through the RTL), its calibration images and artifact, and one short
`pesto transfer` run to Fashion-MNIST classes 5-9 on it. Made once per test session."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "driver"))
from small_model import crop, save_small_checkpoint  # noqa: E402
from transfer_helpers import small_config  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """One torch thread per test (tests/conftest.py)."""


@pytest.fixture(scope="session")
def fm_test():
    """Fashion-MNIST test split (uint8 28x28 images, labels)."""
    from pesto.data import load_splits
    _, test = load_splits("fashion-mnist", augment=False)
    return test.images.numpy(), test.labels.numpy()


@pytest.fixture(scope="session")
def small(tmp_path_factory, fm_test):
    """Paths of the 12x12 backbone checkpoint, its calibration .npy and its own artifact."""
    from pesto import artifact
    from pesto.export import export_model
    torch.set_num_threads(1)   # session fixtures run before the autouse one; exports must match the tests'
    d = tmp_path_factory.mktemp("small")
    bb = save_small_checkpoint(d / "backbone.pt")
    calib = d / "calib.npy"
    np.save(calib, crop(fm_test[0][:64]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = export_model(str(bb), np.load(calib), num_calibration=64, verify=0)
    artifact.save(art, d / "backbone.pesto")
    return {"dir": d, "backbone": bb, "calib": calib, "artifact": d / "backbone.pesto"}


@pytest.fixture(scope="session")
def transferred(small):
    """A Rep-Net (dual) transfer checkpoint of the small backbone, 2 epochs of 4 steps."""
    from pesto.transfer import transfer
    torch.set_num_threads(1)
    cfg = small_config(small, epochs=2, measure_memory=True, out=str(small["dir"] / "repnet.pt"))
    ckpt = transfer(cfg)
    return small["dir"] / "repnet.pt", ckpt
