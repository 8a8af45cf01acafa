"""Every accelerated layer of the trained ResNet-20 (sw/pesto/assets/resnet20_fmnist_wpc.pt,
exported) on the RTL, bit-exact against the integer reference with group skipping on, and
with it off too for the first layer of every distinct shape.

Layer inputs are the real int16 activations of a Fashion-MNIST test image, captured from the
integer reference network (pesto.reference.network.run). Without the embedded checkpoint (a
checkout that has not trained it yet) a randomly initialised ResNet-20 ternarized at export
stands in, so the layer shapes are still all covered."""

from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from pesto.driver.protocol import check_fits
from pesto.reference.layer import run_conv
from pesto.sim.measure import run_checked

pytestmark = [pytest.mark.sim, pytest.mark.xdist_group("rtl_system")]

CHECKPOINT = Path(str(resources.files("pesto").joinpath("assets", "resnet20_fmnist_wpc.pt")))


@pytest.fixture(scope="module")
def traced_layers(embedded):
    """[(layer, int16 input (C, H, W))] of every accelerated layer, in execution order."""
    from pesto.reference import network
    art, images = embedded
    seen = []

    def record(x, layer):
        seen.append((layer, np.asarray(x)[0].copy()))
        return run_conv(x, layer)

    network.run(art, images[:1], conv=record)
    return seen


def test_every_layer_of_resnet20(accel, hw, traced_layers):
    assert len(traced_layers) >= 18  # ResNet-20: 18 3x3 convs (+ 1x1 shortcuts if the export has them)
    shapes = set()
    sparsity = []
    for layer, x in traced_layers:
        check_fits(layer, x.shape[1], x.shape[2], hw)
        y_skip, s_skip = run_checked(accel, layer, x, hw, skip=True)
        total = layer.out_channels * -(-layer.in_channels // min(layer.cg, hw.lanes))
        sparsity.append(1 - s_skip.groups_issued / total)
        shape = (layer.codes.shape, layer.stride, x.shape)
        if shape not in shapes:  # the dense baseline once per shape: same outputs, more cycles
            shapes.add(shape)
            y_dense, s_dense = run_checked(accel, layer, x, hw, skip=False)
            assert np.array_equal(y_skip, y_dense)
            assert s_dense.groups_issued == total
            assert s_skip.compute_cycles <= s_dense.compute_cycles
    if CHECKPOINT.is_file():  # a WPC-trained model has all-zero groups for skipping to use
        assert max(sparsity) > 0.1, sparsity
