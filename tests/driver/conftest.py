"""Shared, expensive things of the driver tests, made once per pytest worker: the simulator
(every test that uses it is in the xdist group "driver-sim", so they share one worker and one
simulator), a small exported ResNet-20 and a few Fashion-MNIST test images.

The RTL simulation runs about 10k cycles per wall second, so the network tests use a ResNet-20
on 12x12 centre crops of Fashion-MNIST (every layer kind of the real one, a fifth of the
pixels), ternarized with half of its PE groups zeroed so skipping has work to skip. The
embedded 28x28 model goes through the RTL in the notebook test and in `pesto demo`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

SIZE = 12


def crop(images: np.ndarray, size: int = SIZE) -> np.ndarray:
    c = (images.shape[-1] - size) // 2
    return np.ascontiguousarray(images[..., c:c + size, c:c + size])


def small_resnet20(seed: int = 0, group_sparsity: float = 0.5):
    """ResNet-20 for 1x12x12 inputs, ternarized (Cg=16), with ``group_sparsity`` of every
    ternary layer's PE groups set to zero."""
    import torch
    from pesto.geometry import num_groups
    from pesto.models import build_model
    from pesto.quant import latent_weight, ternarize_model, ternary_layers
    torch.manual_seed(seed)
    model = ternarize_model(build_model("resnet20", in_channels=1, num_classes=10, input_size=SIZE), cg=16)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, module, cg in ternary_layers(model):
            w = latent_weight(module)
            n, c = w.shape[:2]
            g = num_groups(c, cg)
            dead = torch.rand(n, g, generator=gen) < group_sparsity
            for ni, gi in dead.nonzero().tolist():
                w[ni, gi * cg:(gi + 1) * cg] = 0
    return model.eval()


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
