"""Rep-Net's network: connector arithmetic by hand, where the connectors go, the frozen backbone,
where the gradients go, the lean ops against torch's, and what a step saves for backward."""

from __future__ import annotations

import copy
import types

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from pesto.errors import ConfigError
from pesto.models import build_model
from pesto.quant import ternarize_model
from pesto.transfer import DESIGNS, TransferNet, ops
from pesto.transfer.connectors import find_connectors
from pesto.transfer.memory import measure_step, saved_tensors


def _net(design="dual", method="repnet", size=12, classes=5, **kw):
    torch.manual_seed(0)
    bb = ternarize_model(build_model("resnet20", 1, 10, size)).eval()
    return TransferNet(bb, classes, method, design, input_shape=(1, size, size), **kw)


# -- connector arithmetic -----------------------------------------------------------------
def test_fake_quant_by_hand():
    # frac 2: q = floor(x * 4 + 0.5), saturated to int16, back to x = q / 4
    x = torch.tensor([1.3, -1.45, 0.125, 10000.0, -9000.0], requires_grad=True)
    y = ops.fake_quant(x, 2)
    assert y.tolist() == [1.25, -1.5, 0.25, 32767 / 4, -32768 / 4]
    y.sum().backward()
    assert x.grad.tolist() == [1, 1, 1, 0, 0]   # straight through inside the range, nothing where it saturates


@pytest.mark.parametrize("design", list(DESIGNS))
def test_connector_routes_x_plus_p_as_table_17_says(design):
    """eq 4.6 with hand numbers: x = (1, -2), p = (0.3, 0.55), the backbone's format 2 fraction bits:
    s = x + p = (1.3, -1.45), quantized (1.25, -1.5) where the backbone receives it."""
    net = _net(design)
    i = 0 if design != "dual-all" else 1
    assert net.connectors[i].kind != "head"
    net.fracs = [2] * len(net.connectors)
    x, p = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.3, 0.55]])
    net.repnet.blocks[i] = _Const(p)
    run = types.SimpleNamespace(p=torch.zeros(1))
    out = net._connect(i, x, run)
    d = DESIGNS[design]
    want_x = [1.25, -1.5] if d.to_backbone else [1.0, -2.0]
    want_p = [1.3, -1.45] if d.to_repnet else [0.3, 0.55]
    assert out.tolist() == [want_x] and torch.allclose(run.p, torch.tensor([want_p]))
    # the head always adds, in float (the classifier's input stays on the host)
    head = len(net.connectors) - 1
    net.repnet.blocks[head] = _Const(p)
    assert torch.allclose(net._connect(head, x, run), torch.tensor([[1.3, -1.45]]))


class _Const(nn.Module):
    def __init__(self, v):
        super().__init__()
        self.v = v

    def forward(self, _):
        return self.v


def test_rep_net_starts_as_the_backbone():
    """The last BN of every block starts at zero: before training the transfer network computes the
    backbone's logits exactly (float connectors; the backbone's own classifier copied), whatever
    the design."""
    x = torch.randn(3, 1, 28, 28)
    for design in DESIGNS:
        net = _net(design, size=28, classes=10)
        net.classifier.load_state_dict(net.backbone.fc.state_dict())
        with torch.no_grad():
            assert torch.allclose(net.eval()(x), net.backbone(x), atol=1e-5), design


# -- connectors from the graph --------------------------------------------------------------
@pytest.mark.parametrize("name,size,want", [
    ("resnet20", 28, ["layer2.0.relu_1", "layer3.0.relu_1", "flatten"]),
    ("resnet32", 28, ["layer2.0.relu_1", "layer3.0.relu_1", "flatten"]),
    ("resnet56", 16, ["layer2.0.relu_1", "layer3.0.relu_1", "flatten"]),
    ("resnet18", 32, ["relu", "maxpool", "layer2.0.relu_1", "layer3.0.relu_1", "layer4.0.relu_1", "flatten"]),
])
def test_connectors_of_the_zoo(name, size, want):
    model = ternarize_model(build_model(name, 1, 10, size))
    conns, cls = find_connectors(model, (1, size, size))
    assert [c.op for c in conns] == want and cls == "fc"
    assert [c.kind for c in conns] == ["down"] * (len(want) - 1) + ["head"]
    TransferNet(model, 3, input_shape=(1, size, size))(torch.randn(2, 1, size, size)).sum().backward()


class _Renamed(nn.Module):
    """A backbone whose layer names mean nothing: a stride-2 conv, an average pool, a classifier."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 8, 3, 1, 1)
        self.b = nn.Conv2d(8, 8, 3, 2, 1)
        self.c = nn.BatchNorm2d(8)
        self.d = nn.Linear(8, 4)

    def forward(self, x):
        y = F.relu(self.c(self.b(F.relu(self.a(x)))))
        return self.d(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


def test_connectors_follow_the_graph_not_the_names():
    conns, cls = find_connectors(_Renamed(), (1, 8, 8))
    # the stride-2 conv's value after its BN and ReLU, then the pooled feature the classifier reads
    assert [(c.shape, c.kind) for c in conns] == [((8, 4, 4), "down"), ((8,), "head")] and cls == "d"
    every, _ = find_connectors(_Renamed(), (1, 8, 8), every_block=True)
    assert len(every) == 3 and every[0].shape == (8, 8, 8) and every[0].kind == "block"


def test_dual_all_connects_every_block():
    assert len(_net("dual-all", size=28).connectors) == 11      # stem + 9 blocks + head
    assert len(_net("dual", size=28).connectors) == 3


# -- what trains ----------------------------------------------------------------------------
def _steps(net, n=3, size=12):
    opt = torch.optim.Adam(net.trainable_parameters(), 1e-2)
    net.train()
    g = torch.Generator().manual_seed(1)
    for _ in range(n):
        x, y = torch.randn(8, 1, size, size, generator=g), torch.randint(0, 5, (8,), generator=g)
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return net


def test_backbone_bit_identical_and_gradients_only_in_repnet_and_classifier():
    net = _net("dual")
    net.fracs = [9, 9, None]
    before = copy.deepcopy(net.backbone.state_dict())
    _steps(net)
    after = net.backbone.state_dict()
    assert before.keys() == after.keys()
    for k in before:  # weights, BN running mean/var and num_batches_tracked: bit for bit
        assert torch.equal(before[k], after[k]), k
    grads = {n for n, p in net.named_parameters() if p.grad is not None}
    assert grads and all(n.startswith(("repnet.", "classifier.")) for n in grads)
    assert all(p.grad is None for p in net.backbone.parameters())
    assert {n.split(".")[0] for n in grads} == {"repnet", "classifier"}


@pytest.mark.parametrize("method,prefixes", [
    ("last", ("classifier.",)), ("input-reprogram", ("reprogram", "classifier.")),
    ("bias-bn", ("backbone.", "classifier.")), ("full", ("backbone.", "classifier."))])
def test_baselines_train_what_they_say(method, prefixes):
    net = _steps(_net(method=method))
    grads = [n for n, p in net.named_parameters() if p.grad is not None]
    assert grads and all(n.startswith(prefixes) for n in grads)
    if method == "bias-bn":
        assert all(".bn" in n or n.startswith("classifier.") for n in grads)
    assert not any(n.startswith("backbone.fc.") for n in grads)   # the old classifier is dropped


def test_unknown_design_and_method_are_config_errors():
    with pytest.raises(ConfigError, match="unknown design 'diagonal'.*dual"):
        _net("diagonal")
    with pytest.raises(ConfigError, match="unknown method 'lora'.*repnet"):
        _net(method="lora")


def test_backbone_without_down_sampling_is_refused():
    flat = nn.Sequential(nn.Conv2d(1, 4, 3, 1, 1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    with pytest.raises(ConfigError, match="no down-sampling point"):
        TransferNet(flat, 3, input_shape=(1, 8, 8))


# -- lean ops and memory ---------------------------------------------------------------------
def test_lean_ops_have_torchs_gradients():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64, requires_grad=True)
    conv, bn, pool = nn.Conv2d(3, 4, 3, 2, 1).double(), nn.BatchNorm2d(3).double().eval(), nn.MaxPool2d(3, 2, 1)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    for m in (conv, bn):
        m.requires_grad_(False)
    for lean, ref in ((lambda t: ops.conv(t, conv), conv), (lambda t: ops.bn(t, bn), bn), (ops.relu, F.relu),
                      (lambda t: ops.maxpool(t, pool), pool)):
        a, b = lean(x), ref(x)
        g = torch.randn_like(b)
        ga, = torch.autograd.grad(a, x, g)
        gb, = torch.autograd.grad(b, x, g)
        assert torch.allclose(a, b, atol=1e-12) and torch.allclose(ga, gb, atol=1e-12)
    bits = torch.rand(37) > 0.5
    assert torch.equal(ops.unpack_bits(ops.pack_bits(bits), (37,)), bits) and ops.pack_bits(bits).numel() == 5


def test_rep_net_saves_less_for_backward_than_full_fine_tuning():
    x = torch.randn(16, 1, 28, 28)
    saved = {}
    for method in ("repnet", "full", "last"):
        net = _net(method=method, size=28).train()
        net.fracs = [9, 9, None][:len(net.connectors)]
        _, saved[method] = saved_tensors(net, x)
    rn, full = saved["repnet"], saved["full"]
    assert rn["saved_tensors"] < full["saved_tensors"]
    assert rn["saved_activation_bytes"] * 3 < full["saved_activation_bytes"]
    # the last-layer baseline keeps only the classifier's input: 16 x 64 float32
    assert saved["last"]["saved_activation_bytes"] == 16 * 64 * 4


def test_measure_step_and_table16_by_hand():
    net = _net(method="last", size=12)
    opt = torch.optim.Adam(net.trainable_parameters(), 1e-3)
    m = measure_step(net, opt, torch.randn(8, 1, 12, 12), torch.randint(0, 5, (8,)))
    # table 16 for the FC alone: a = n * c_in = 8 * 64, p = c_in * c_out + c_out = 64 * 5 + 5
    assert m["table16"]["activations"] == 8 * 64 and m["table16"]["params"] == 325
    # params + grads + Adam's two moments (+ its step counters)
    assert m["param_bytes"] == m["grad_bytes"] == 325 * 4 and m["optimizer_bytes"] >= 2 * 325 * 4
    assert m["trainable_bytes"] == m["param_bytes"] + m["grad_bytes"] + m["optimizer_bytes"]
    assert m["peak_rss_bytes"] is None or m["peak_rss_bytes"] > 0
