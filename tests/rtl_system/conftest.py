"""One simulator per pytest worker for the system tests: building and starting it is the slow
part, so every test of the xdist group "rtl_system" shares it (and runs on the same worker)."""

import warnings
from importlib import resources
from pathlib import Path

import pytest

CHECKPOINT = Path(str(resources.files("pesto").joinpath("assets", "resnet20_fmnist_wpc.pt")))


@pytest.fixture(scope="session")
def accel():
    """The default (PYNQ-Z1) build of pesto_accel in Verilator, served over SimAccelerator."""
    from pesto.sim.server import SimAccelerator
    with SimAccelerator("verilator", timeout_s=900) as bus:
        yield bus


@pytest.fixture(scope="session")
def hw(accel):
    from pesto.driver.protocol import check_identity
    return check_identity(accel)


@pytest.fixture(scope="session")
def embedded():
    """(artifact, images): the embedded trained ResNet-20 (sw/pesto/assets/resnet20_fmnist_wpc.pt)
    exported, and the first 16 Fashion-MNIST test images (uint8), which calibrated it. Without the
    checkpoint (a checkout that has not trained it yet) a randomly initialised ResNet-20
    ternarized at export stands in, so the layer shapes are still all covered."""
    from pesto.data import load_splits
    from pesto.export import export_model
    _, test = load_splits("fashion-mnist", augment=False)
    images = test.images[:16].numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if CHECKPOINT.is_file():
            art = export_model(str(CHECKPOINT), calib_images=images, verify=0)
        else:
            import torch
            from pesto.models import build_model
            torch.manual_seed(0)
            model = build_model("resnet20", in_channels=1, num_classes=10, input_size=28)
            art = export_model(model, calib_images=images, mean=[0.286], std=[0.353], verify=0)
    return art, images
