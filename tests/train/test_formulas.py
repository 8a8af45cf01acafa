"""Hand-computed cases of every formula of Chapter 2 (eq 2.1-2.8) and the metric definitions."""

import math

import pytest
import torch
import torch.nn as nn

from pesto import geometry, metrics
from pesto.errors import ConfigError
from pesto.prune import Regularizer, group_lasso, group_soft_threshold_, wpc_penalty, wpc_threshold
from pesto.quant import ternarize, ternarize_model, ternary_layers
from pesto.quant.ternary import Ternarize


def test_delta_and_alpha_eq_2_1_2_2():
    w = torch.tensor([0.1, -0.5, 1.0, 0.04, -0.06, 0.0, 0.05, -0.05])
    codes, alpha = ternarize(w)
    # Delta = 0.05 * max|w| = 0.05; |w| == Delta maps to 0 (-Delta <= w <= Delta)
    assert codes.tolist() == [1, -1, 1, 0, -1, 0, 0, 0]
    assert alpha.item() == pytest.approx((0.1 + 0.5 + 1.0 + 0.06) / 4)
    codes, alpha = ternarize(torch.zeros(3))
    assert codes.tolist() == [0, 0, 0] and alpha.item() == 0.0


def test_ste_passes_the_gradient_through_unchanged():
    conv = nn.Conv2d(2, 2, 1, bias=False)
    ternarize_model(nn.Sequential(nn.Conv2d(1, 2, 1), conv, nn.Conv2d(2, 1, 1)), cg=2)
    latent = conv.parametrizations.weight.original
    w_hat = conv.weight
    codes, alpha = ternarize(latent)
    assert torch.equal(w_hat, alpha * codes.float())
    g = torch.randn_like(w_hat)
    (w_hat * g).sum().backward()
    assert torch.equal(latent.grad, g)  # dL/dw = dL/dw_hat


def _padded_weight():
    # (N=2, C=3, 1, 2), cg=2 -> G=2 groups per output channel, the second padded by one channel
    return torch.tensor([[[[3.0, 4.0]], [[0.0, 0.0]], [[1.0, 2.0]]],
                         [[[0.0, 0.0]], [[0.0, 1.0]], [[0.0, 0.0]]]], requires_grad=True)


def test_group_norms_over_padded_channels():
    w = _padded_weight()
    norms = geometry.group_norms(w, 2)
    assert norms.shape == (2, 2)
    assert torch.allclose(norms, torch.tensor([[5.0, math.sqrt(5)], [1.0, 0.0]]))
    assert group_lasso(w, 2).item() == pytest.approx(5 + math.sqrt(5) + 1)


def test_group_lasso_gradient_is_w_over_norm_and_zero_for_empty_groups():
    w = _padded_weight()
    group_lasso(w, 2).backward()
    expect = torch.tensor([[[[0.6, 0.8]], [[0.0, 0.0]], [[1 / math.sqrt(5), 2 / math.sqrt(5)]]],
                           [[[0.0, 0.0]], [[0.0, 1.0]], [[0.0, 0.0]]]])
    assert torch.allclose(w.grad, expect)  # an all-zero group's subgradient is 0, not NaN


def test_wpc_clips_large_groups_to_delta_with_exactly_zero_gradient():
    w = _padded_weight()
    # norms 5, sqrt5, 1, 0 -> mean 2.059; a = 1.2 -> delta = 2.471: only the norm-5 group is clipped
    term, delta, clipped = wpc_penalty(w, 2, a=1.2)
    mean = (5 + math.sqrt(5) + 1 + 0) / 4
    assert delta.item() == pytest.approx(1.2 * mean)
    assert not delta.requires_grad  # eq 2.7: a constant in the backward pass
    assert clipped.tolist() == [[True, False], [False, False]]
    assert term.item() == pytest.approx(delta.item() + math.sqrt(5) + 1)
    term.backward()
    g = w.grad
    assert torch.count_nonzero(g[0, 0:2]) == 0  # clipped group: exactly zero gradient
    assert torch.allclose(g[0, 2], torch.tensor([[1.0, 2.0]]) / math.sqrt(5))  # = group-lasso gradient
    assert torch.allclose(g[1, 1], torch.tensor([[0.0, 1.0]]))


def test_wpc_threshold_equal_norm_is_clipped():
    norms = torch.tensor([[2.0, 2.0]])
    assert wpc_threshold(norms, 1.0).item() == 2.0
    w = torch.tensor([[[[2.0]], [[2.0]]]], requires_grad=True)  # two groups of cg=1, norm 2 = delta
    term, delta, clipped = wpc_penalty(w, 1, 1.0)
    assert clipped.all() and term.item() == 4.0
    term.backward()
    assert torch.count_nonzero(w.grad) == 0


def test_regularizer_sums_layers_times_lambda():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 3), nn.Conv2d(4, 2, 1))
    ternarize_model(model, cg=2)
    reg = Regularizer.for_mode("naive", model, lam=0.5)
    expect = 0.5 * sum(group_lasso(m.parametrizations.weight.original, cg).item()
                       for _, m, cg in ternary_layers(model))
    assert reg.penalty().item() == pytest.approx(expect)
    assert not Regularizer.for_mode("tern", model, lam=0.5).active
    with pytest.raises(ConfigError, match="unknown mode"):
        Regularizer.for_mode("magic", model)


def test_group_lasso_prox_shrinks_groups_and_zeroes_small_ones():
    # 3 input channels, cg 2: groups {0, 1} and {2 + padding}; norms 5 and 0.05 in channel 0's row
    w = torch.zeros(2, 3, 1, 1)
    w[0, :, 0, 0] = torch.tensor([3.0, 4.0, 0.05])
    w[1, :, 0, 0] = torch.tensor([0.0, 0.1, -2.0])
    group_soft_threshold_(w, 2, 0.5)
    # ||(3, 4)|| = 5 -> x (1 - 0.5/5) = 0.9; 0.05 < 0.5 -> 0; ||(0, 0.1)|| < 0.5 -> 0; 2 -> 1.5/2
    assert w[:, :, 0, 0].flatten().tolist() == pytest.approx([2.7, 3.6, 0.0, 0.0, 0.0, -1.5])
    lin = torch.tensor([[1.0, 0.0, 0.0, 0.2]])  # a linear weight (N, C), cg 2
    group_soft_threshold_(lin, 2, 0.5)
    assert lin.flatten().tolist() == pytest.approx([0.5, 0.0, 0.0, 0.0])


def test_prune_mode_is_proximal_and_makes_exact_zero_groups():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 8, 3), nn.Conv2d(8, 8, 3), nn.Conv2d(8, 2, 1))
    reg = Regularizer.for_mode("prune", model, lam=1.0, cg=2)
    assert reg.proximal and not Regularizer.for_mode("naive", model, lam=1.0, cg=2).proximal
    w = model[1].weight
    before = geometry.group_norms(w, 2).detach().clone()
    s = before.flatten().sort().values
    k = len(s) // 2
    t = float(s[k - 1] + s[k]) / 2  # lr * lam between two group norms: half the groups fall under it
    reg.prox_(lr=t)
    after = geometry.group_norms(w, 2)
    small = before <= t
    assert small.any() and (~small).any()
    assert torch.all(after[small] == 0)
    assert torch.allclose(after[~small], before[~small] - t, atol=1e-6)
    with pytest.raises(ConfigError, match="group lasso only"):
        Regularizer([], "wpc", 1.0, proximal=True)


def test_compression_rate_eq_2_8():
    assert metrics.compression_rate(0.0) == 16.0
    assert metrics.compression_rate(0.25) == pytest.approx(21.333, abs=1e-3)  # table 3: ~21.5x at Gs 25%
    assert metrics.compression_rate(0.44, bits=32) == pytest.approx(1.786, abs=1e-3)  # table 3 pruning ~1.78
    assert metrics.compression_rate(1.0) == math.inf


def _ternary_conv(weight):
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], bias=False)
    conv.weight.data = weight.clone()
    torch.nn.utils.parametrize.register_parametrization(conv, "weight", Ternarize(2))
    return conv


def test_layer_metrics_by_hand():
    # latent values in {-1, 0, 1}: the codes equal them. cg=2 over C=3: groups {0,1}, {2 (+pad)}
    w = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]).reshape(2, 3, 1, 1)
    m = metrics.layer_metrics(_ternary_conv(w), 2)
    assert (m["groups"], m["zero_groups"], m["weights"], m["zeros"]) == (4, 2, 6, 4)
    assert m["group_sparsity"] == 0.5
    assert m["layer_sparsity"] == pytest.approx(4 / 6)
    # non-zero groups: (n0, g0) holds 2 real weights, (n1, g1) holds 1 -> 3 weights, 2 non-zero
    assert m["in_group_sparsity"] == pytest.approx(1 / 3)
    assert m["compression_rate"] == 32.0
    model = nn.Sequential(_ternary_conv(w), _ternary_conv(torch.ones(2, 3, 1, 1)))
    mm = metrics.model_metrics(model, [("0", model[0], 2), ("1", model[1], 2)])
    assert mm["group_sparsity"] == 2 / 8 and mm["overall_sparsity"] == 4 / 12
    assert mm["in_group_sparsity"] == pytest.approx(1 / 9)
    assert mm["compression_rate"] == pytest.approx(32 / (0.75 * 2))
    # storage: 6 non-zero groups x 2 weights x 2 bits + 8 indexer bits vs 12 x 32 bits
    assert mm["storage_rate"] == pytest.approx(12 * 32 / (6 * 2 * 2 + 8))


def test_float_layers_count_tiny_weights_as_zero():
    conv = nn.Conv2d(2, 1, 1, bias=False)
    conv.weight.data = torch.tensor([1.0, 1e-5]).reshape(1, 2, 1, 1)
    m = metrics.layer_metrics(conv, 1)
    assert m["bits"] == 32 and m["zero_groups"] == 1 and m["compression_rate"] == pytest.approx(2.0)


def test_cg_that_does_not_fit_is_refused():
    model = nn.Sequential(nn.Conv2d(1, 16, 3), nn.Conv2d(16, 16, 3), nn.Conv2d(16, 2, 1))
    with pytest.raises(ConfigError, match="Cg=32 is larger than the layer's 16 input channels"):
        ternarize_model(model, cg=16, cg_overrides={"1": 32})
    with pytest.raises(ConfigError, match="positive integer"):
        ternarize_model(model, cg=0)
    with pytest.raises(ConfigError, match="unknown layer 'conv9'"):
        ternarize_model(model, cg_overrides={"conv9": 4})


def test_prune_mode_regularizes_the_layers_the_ternary_modes_compress():
    from pesto.models import build_model
    from pesto.prune import compressed_layers
    float_model = build_model("resnet20", 1, 10, 28)
    tern_model = ternarize_model(build_model("resnet20", 1, 10, 28), cg=8)
    a = [(n, cg) for n, _, cg in compressed_layers(float_model, cg=8)]
    b = [(n, cg) for n, _, cg in ternary_layers(tern_model)]
    assert a == b and len(a) == 18 and a[0] == ("layer1.0.conv1", 8)
    reg = Regularizer.for_mode("prune", float_model, lam=1.0, cg=8)
    assert reg.kind == "lasso" and reg.penalty().requires_grad
    m = metrics.model_metrics(float_model, compressed_layers(float_model, cg=8))
    assert m["bits"] == 32 and m["compression_rate"] == pytest.approx(1.0)
