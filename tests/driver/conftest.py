"""Shared, expensive things of the driver tests, made once per pytest worker: the simulator
(every test that uses it is in the xdist group "driver-sim", so they share one worker and one
simulator), a small exported ResNet-20 and a few Fashion-MNIST test images.

The network tests use small_model.small_resnet20 (12x12 inputs): the RTL simulation is slow.
The embedded 28x28 model goes through the RTL in tests/bench/test_demo.py (`pesto demo`).
"""

from __future__ import annotations

import warnings

import pytest
from small_model import crop, small_resnet20


@pytest.fixture(scope="session")
def sim():
    """The default (PYNQ-Z1) build of pesto_accel in Verilator."""
    from pesto.sim.server import SimAccelerator
    with SimAccelerator("verilator", timeout_s=900) as bus:
        yield bus


@pytest.fixture(scope="session")
def fmnist():
    """(images uint8 (N, 1, 12, 12), labels): centre crops of the Fashion-MNIST test split."""
    from pesto.data import load_splits
    _, test = load_splits("fashion-mnist", augment=False)
    return crop(test.images[:64].numpy()), test.labels[:64].numpy()


@pytest.fixture(scope="session")
def artifact_path(tmp_path_factory, fmnist):
    from pesto import artifact
    from pesto.export import export_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = export_model(small_resnet20(), calib_images=fmnist[0][:32], mean=[0.286], std=[0.353], verify=0)
    return artifact.save(art, tmp_path_factory.mktemp("artifact") / "resnet20_12px.pesto")


@pytest.fixture(scope="session")
def art(artifact_path):
    from pesto import artifact
    return artifact.load(artifact_path)
