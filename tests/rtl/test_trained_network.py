"""Every accelerated layer of the project's trained ResNet-20 (sw/pesto/assets) through the RTL,
bit-exact against the integer network: the layers are exported from the checkpoint and fed
the activations a real Fashion-MNIST test image produces in the integer network."""

import json
from pathlib import Path

import numpy as np
import pytest

from pesto.sim.build import build, run

pytestmark = pytest.mark.sim

CHECKPOINT = Path(__file__).resolve().parents[2] / "sw" / "pesto" / "assets" / "resnet20_fmnist_wpc.pt"
FMNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def layers_npz(tmp_path_factory):
    if not CHECKPOINT.exists():
        pytest.skip(f"{CHECKPOINT} missing: it is part of the repository (git checkout)")
    from pesto.data.readers import read_fashion_mnist
    from pesto.export import export_model
    from pesto.reference import network
    from pesto.reference.layer import run_conv

    images, _ = read_fashion_mnist(FMNIST, "test")
    images = np.asarray(images).reshape(-1, 1, 28, 28)
    artifact = export_model(str(CHECKPOINT), calib_images=images[:16], verify=0)
    captured = []

    def conv(x, layer):
        y = run_conv(x, layer)
        captured.append((layer, x[0], y[0]))
        return y

    network.run(artifact, images[:1], conv=conv)
    arrays, metas = {}, []
    for i, (layer, x, y) in enumerate(captured):
        metas.append({"name": layer.name, "stride": layer.stride, "padding": layer.padding, "cg": layer.cg,
                      "relu": bool(layer.relu)})
        arrays.update({f"codes{i}": layer.codes, f"mult{i}": layer.mult, f"shift{i}": layer.shift,
                       f"bias{i}": layer.bias, f"x{i}": x, f"y{i}": y})
    assert len(captured) == len(artifact.layers) >= 18
    path = tmp_path_factory.mktemp("trained") / "layers.npz"
    np.savez(path, meta=np.array(json.dumps(metas)), **arrays)
    return path


@pytest.mark.xdist_group("verilator-accel-default")
def test_trained_resnet20_layers(layers_npz):
    run(build("verilator", "pesto_accel", {}), "test_pesto_accel", testcase="test_trained_layers",
        extra_env={"PESTO_LAYERS_NPZ": str(layers_npz)})
