"""Shared, expensive things of the driver tests, made once per pytest worker: the simulator
(every test that uses it is in the xdist group "driver-sim", so they share one worker and one
simulator), an exported ResNet-20 and a few Fashion-MNIST test images."""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def sim():
    """The default (PYNQ-Z1) build of pesto_accel in Verilator."""
    from pesto.sim.server import SimAccelerator
    with SimAccelerator("verilator", timeout_s=900) as bus:
        yield bus


@pytest.fixture(scope="session")
def fmnist():
    """(images uint8 (N, 1, 28, 28), labels) of the Fashion-MNIST test split."""
    from pesto.data import load_splits
    _, test = load_splits("fashion-mnist", augment=False)
    return test.images[:64].numpy(), test.labels[:64].numpy()


@pytest.fixture(scope="session")
def artifact_path(tmp_path_factory, fmnist):
    """The embedded trained ResNet-20 exported (a randomly initialised, ternarized-on-the-spot
    one while the embedded model is not there yet)."""
    import torch
    from pesto import artifact
    from pesto.export import export_model
    ckpt = Path(str(resources.files("pesto").joinpath("assets", "resnet20_fmnist_wpc.pt")))
    calib = fmnist[0][:32]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if ckpt.is_file():
            art = export_model(str(ckpt), calib_images=calib, verify=0)
        else:
            from pesto.models import build_model
            torch.manual_seed(0)
            model = build_model("resnet20", in_channels=1, num_classes=10, input_size=28)
            art = export_model(model, calib_images=calib, mean=[0.286], std=[0.353], verify=0)
    return artifact.save(art, tmp_path_factory.mktemp("artifact") / "resnet20.pesto")


@pytest.fixture(scope="session")
def art(artifact_path):
    from pesto import artifact
    return artifact.load(artifact_path)
