"""Shared, expensive things of the driver tests, made once per pytest worker: the simulator
(every test that uses it is in the xdist group "driver-sim", so they share one worker and one
simulator), a small exported ResNet-20 and a few Fashion-MNIST test images.

The network tests use small_model.small_resnet20 (12x12 inputs), so that a whole network stays
quick; the embedded 28x28 model goes through the RTL in tests/rtl_system/test_fastsim.py and
tests/bench/test_demo.py (`pesto demo`).
"""

from __future__ import annotations

import fcntl
import os
import warnings

import pytest
from small_model import crop, small_resnet20


@pytest.fixture(scope="session")
def sim():
    """The default (PYNQ-Z1) build of pesto_accel in Verilator, through the fast C++ harness:
    the bus `backend="sim"` opens by default (tests/rtl_system checks it against cocotb)."""
    from pesto.sim.fast import FastSim
    with FastSim(timeout_s=900) as bus:
        yield bus


@pytest.fixture(scope="session")
def fmnist():
    """(images uint8 (N, 1, 12, 12), labels): centre crops of the Fashion-MNIST test split."""
    from pesto.data import load_splits
    _, test = load_splits("fashion-mnist", augment=False)
    return crop(test.images[:64].numpy()), test.labels[:64].numpy()


@pytest.fixture(scope="session")
def artifact_path(tmp_path_factory, fmnist):
    """Exported once per test session: the pytest-xdist workers share it through the session's
    temporary folder (under a file lock)."""
    from pesto import artifact
    from pesto.export import export_model
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # popen-gwN/ -> the session's folder
        shared = shared.parent
    path = shared / "resnet20_12px.pesto"
    with open(shared / "resnet20_12px.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.is_file():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                art = export_model(small_resnet20(), calib_images=fmnist[0][:32], mean=[0.286], std=[0.353],
                                   verify=0)
            artifact.save(art, path)
    return path


@pytest.fixture(scope="session")
def art(artifact_path):
    from pesto import artifact
    return artifact.load(artifact_path)
