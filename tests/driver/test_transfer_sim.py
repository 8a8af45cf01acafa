"""A transferred network (Rep-Net grafted onto the backbone's artifact, pesto.transfer.deploy) on the
accelerator RTL: bit for bit the integer reference, node by node, with the backbone's accelerated
layers byte-identical to its own artifact's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from small_model import small_resnet20

from pesto import artifact
from pesto.driver import Accelerator
from pesto.reference import network
from pesto.transfer import TransferNet
from pesto.transfer.connectors import backbone_ops
from pesto.transfer.deploy import backbone_formats, backbone_values, connector_formats, graft, tconv_layers

pytestmark = [pytest.mark.sim, pytest.mark.xdist_group("driver-sim")]


@pytest.fixture(scope="module")
def transferred(art):
    """The driver tests' small backbone with a dual-connection Rep-Net whose features matter."""
    torch.manual_seed(3)
    net = TransferNet(small_resnet20(), 5, "repnet", "dual", input_shape=tuple(art.input_shape))
    with torch.no_grad():
        for block in net.repnet.blocks:
            block.bn2.weight.uniform_(0.5, 1.5)
            for bn in (block.bn1, block.bn2):
                bn.running_mean.uniform_(-0.2, 0.2)
                bn.running_var.uniform_(0.5, 2.0)
    values = backbone_values(net.backbone, net.input_shape, art.meta["input"]["mean"], art.meta["input"]["std"])
    net.set_formats(connector_formats(art, values, net.connectors),
                    backbone_formats(art, values, backbone_ops(net.backbone, net.input_shape)))
    return graft(art, values, net), net


def test_transferred_artifact_bit_exact_on_sim_and_ref(sim, art, transferred, fmnist):
    t_art, net = transferred
    assert tconv_layers(artifact.to_bytes(t_art)) == tconv_layers(artifact.to_bytes(art))
    assert any(n.op == "quantize" and n.name.startswith("conn") for n in t_art.nodes)
    images = fmnist[0][:1]
    want, want_trace = network.run(t_art, images, trace=True)
    ref = Accelerator(t_art, backend="ref").execute(images)
    with Accelerator(t_art, backend="sim", sim=sim) as acc:
        got, trace = acc.execute(images, trace=True)
    assert np.array_equal(ref, want) and np.array_equal(got, want)
    for name, value in want_trace.items():
        assert np.array_equal(trace[name], value), name
    # and the integer pipeline is the torch model it was exported from (top-1)
    x = torch.from_numpy(network.normalize(t_art, images))
    with torch.no_grad():
        assert net.eval()(x).argmax(1).tolist() == want.argmax(1).tolist()
