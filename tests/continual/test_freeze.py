"""Frozen layers: no update, no weight gradient, no saved activations they do not need; the
backward-FLOP rule against torch's FlopCounterMode; the layer list of both backbones."""

import copy

import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from pesto.continual.augment import ViewAugment
from pesto.continual.cost import StepMeter
from pesto.continual.freeze import find_layers, freeze, frozen_indices, unfreeze
from pesto.continual.learners import build_learner

X = torch.zeros(2, 1, 28, 28)


def _learner(name="simsiam", model="resnet20", **kw):
    torch.manual_seed(0)
    return build_learner(name, model, 1, 28, proj_dim=32, **kw)


def _views(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    imgs = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    aug = ViewAugment((0.286,), (0.353,))
    return aug(imgs, g), aug(imgs, g)


def test_layers_are_the_convolutions_in_forward_order_with_their_batchnorm():
    L = _learner()
    layers = find_layers(L.backbone, X)
    assert len(layers) == 19                                   # ResNet-20: 19 convolutions
    assert layers[0].name == "conv1" and layers[0].bn is L.backbone.bn1
    assert layers[1].name == "layer1.0.conv1" and layers[-1].name == "layer3.2.conv2"
    assert all(l.bn is not None and l.bn.num_features == l.conv.out_channels for l in layers)
    r18 = build_learner("simsiam", "resnet18-cifar", 1, 28, proj_dim=32, width=8).backbone
    names = [l.name for l in find_layers(r18, X)]
    assert len(names) == 20 and names[:3] == ["conv1", "layer1.0.conv1", "layer1.0.conv2"]
    assert "layer2.0.downsample.0" in names                   # the projection shortcuts are layers too


def test_frozen_layers_receive_no_update():
    L = _learner()
    layers = find_layers(L.backbone, X)
    for i in (0, 5, 11):
        freeze(layers[i])
    before = copy.deepcopy(L.state_dict())
    opt = torch.optim.SGD(L.parameters(), lr=0.5, momentum=0.9, weight_decay=5e-4)
    L.train()
    for s in range(3):
        loss = L(*_views(seed=s))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for i in (0, 5, 11):
            assert layers[i].conv.weight.grad is None and layers[i].bn.weight.grad is None
        opt.step()
    after = L.state_dict()
    frozen = {f"backbone.{layers[i].name}.weight" for i in (0, 5, 11)}
    for i in (0, 5, 11):
        bn = next(n for n, m in L.backbone.named_modules() if m is layers[i].bn)
        frozen |= {f"backbone.{bn}.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    for k in frozen:
        assert torch.equal(before[k], after[k]), k                  # bit for bit, BN statistics included
    assert not torch.equal(before["backbone.layer1.0.conv1.weight"], after["backbone.layer1.0.conv1.weight"])
    assert frozen_indices(layers) == [0, 5, 11]
    for l in layers:
        unfreeze(l)
    assert frozen_indices(layers) == [] and all(p.requires_grad for p in L.parameters())
    loss = L(*_views())
    loss.backward()
    assert layers[0].conv.weight.grad is not None


def test_frozen_layer_keeps_its_function_and_passes_the_right_input_gradient():
    L = _learner().eval()
    layers = find_layers(L.backbone, X)
    x = _views()[0].requires_grad_(True)
    ref = L.backbone(x)
    (g_ref,) = torch.autograd.grad(ref.sum(), x)
    freeze(layers[4])                                           # a middle layer: BN in eval mode already
    out = L.backbone(x)
    (g,) = torch.autograd.grad(out.sum(), x)
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.allclose(g, g_ref, atol=1e-5, rtol=1e-4)       # FrozenConv2d's backward = conv's input grad


def _saved(L, v1, v2):
    m = StepMeter(L)
    with m.step():
        loss = L(v1, v2)
    loss.backward()
    return m


def test_a_frozen_prefix_keeps_no_graph_and_a_frozen_middle_layer_saves_no_input():
    L = _learner().train()
    layers = find_layers(L.backbone, X)
    v1, v2 = _views()
    full = _saved(L, v1, v2).saved_bytes
    # every backbone layer frozen: only the heads' activations are saved, exactly what the heads
    # alone save on the (constant) features
    for l in layers:
        freeze(l)
    everything = _saved(L, v1, v2).saved_bytes
    with torch.no_grad():
        f1, f2 = L.backbone(v1), L.backbone(v2)
    heads = StepMeter(L)
    with heads.step():
        z1, z2 = L.projector(f1), L.projector(f2)
        p1, p2 = L.predictor(z1), L.predictor(z2)
        loss = -0.5 * (nn.functional.cosine_similarity(p1, z2.detach()).mean()
                       + nn.functional.cosine_similarity(p2, z1.detach()).mean())
    assert loss.requires_grad and everything == heads.saved_bytes and everything < full / 50
    for l in layers:
        unfreeze(l)
    # a growing frozen prefix saves strictly less
    saved = []
    for k in (0, 1, 3, 7):
        for l in layers[:k]:
            freeze(l)
        saved.append(_saved(L, v1, v2).saved_bytes)
        for l in layers:
            unfreeze(l)
    assert saved[0] == full and saved == sorted(saved, reverse=True) and len(set(saved)) == 4
    # one frozen layer in the middle: its BN no longer saves its input (the conv output, 2 views) and the
    # conv saves no input of its own (the ReLU before it keeps that tensor anyway)
    mid = layers[8]
    out_bytes = 2 * 8 * mid.conv.out_channels * 14 * 14 * 4
    freeze(mid)
    one = _saved(L, v1, v2).saved_bytes
    assert full - one == pytest.approx(out_bytes, rel=0.02)


@pytest.mark.parametrize("frozen", [[], [0, 1, 2], [6, 9], [0, 4, 10, 18]])
def test_backward_flop_rule_matches_torch_flop_counter(frozen):
    L = _learner().train()
    layers = find_layers(L.backbone, X)
    for i in frozen:
        freeze(layers[i])
    v1, v2 = _views()
    m = StepMeter(L)
    with m.step():
        loss = L(v1, v2)
    with FlopCounterMode(display=False) as fc:
        loss.backward()
    assert m.bwd_flops == fc.get_total_flops()
    with FlopCounterMode(display=False) as fwd:
        L(v1, v2)
    assert m.fwd_flops == fwd.get_total_flops()
