"""PTLF's formulas on hand-computed cases: eq 5.7 (subspace, energy), eq 5.6 (correlation), eq 5.8/5.9."""

import math

import pytest
import torch

from pesto.continual.ptlf import (ascending, basis_from_gram, by_correlation, check_ratio, correlation_ratio,
                                  energy_rank, freeze_ratio_at, frozen_target, subspace_basis)
from pesto.errors import ConfigError


def _rotation(m: int, seed: int = 0) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(m, m, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


def test_energy_threshold_on_known_singular_values():
    # sigma = 3, 2, 1: energies 9, 4, 1 of 14 -> cumulative 9/14 = 0.643, 13/14 = 0.929, 1
    s = torch.tensor([3.0, 2.0, 1.0])
    assert energy_rank(s, 0.60) == 1
    assert energy_rank(s, 9 / 14) == 1          # exactly on the threshold: >= holds
    assert energy_rank(s, 0.65) == 2
    assert energy_rank(s, 13 / 14) == 2
    assert energy_rank(s, 0.929) == 3           # 13/14 = 0.92857 falls short
    assert energy_rank(s, 1.0) == 3
    assert energy_rank(torch.zeros(3), 0.9) == 0
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        energy_rank(s, 0.0)


def test_subspace_basis_of_a_small_matrix():
    # R = diag(3, 2, 1) on the first three of 4 columns: its left singular vectors are e1, e2, e3
    R = torch.zeros(3, 4, dtype=torch.float64)
    R[0, 0], R[1, 1], R[2, 2] = 3.0, 2.0, 1.0
    B = subspace_basis(R, 0.9)                  # 13/14 >= 0.9 > 9/14: k = 2
    assert B.shape == (3, 2)
    assert torch.allclose(B.abs(), torch.eye(3, dtype=torch.float64)[:, :2])
    # rotated: R = Q diag(3, 2, 1) V' spans Q's first columns; compare projectors (signs are free)
    Q, V = _rotation(3, 1), _rotation(4, 2)
    Rq = Q @ R @ V.T
    for energy, k in ((0.6, 1), (0.9, 2), (0.99, 3)):
        B = subspace_basis(Rq, energy)
        assert B.shape[1] == k
        assert torch.allclose(B @ B.T, Q[:, :k] @ Q[:, :k].T, atol=1e-10)
        Bg = basis_from_gram(Rq @ Rq.T, energy)          # the Gram route the loop takes
        assert torch.allclose(Bg @ Bg.T, B @ B.T, atol=1e-10)


def test_correlation_ratio_inside_orthogonal_and_between():
    B = torch.eye(4, dtype=torch.float64)[:, :2]         # the subspace span(e1, e2)
    inside = torch.tensor([[1.0, -2.0, 0.0, 0.0], [0.5, 3.0, 0.0, 0.0]])
    orthogonal = torch.tensor([[0.0, 0.0, 1.0, 2.0], [0.0, 0.0, -4.0, 0.5]])
    assert correlation_ratio(inside, B) == pytest.approx(1.0, abs=1e-12)
    assert correlation_ratio(orthogonal, B) == pytest.approx(0.0, abs=1e-12)
    assert correlation_ratio(torch.tensor([[3.0, 0.0, 4.0, 0.0]]), B) == pytest.approx(0.6)   # 3 / 5
    # a conv gradient (Cout, Cin, kh, kw) is flattened to (Cout, Cin*kh*kw); a rotated basis changes nothing
    Q = _rotation(4, 3)
    g = (torch.tensor([[3.0, 0.0, 4.0, 0.0]], dtype=torch.float64) @ Q.T).reshape(1, 1, 2, 2)
    assert correlation_ratio(g, Q[:, :2]) == pytest.approx(0.6)
    assert correlation_ratio(torch.zeros(2, 4), B) == 0.0
    assert correlation_ratio(inside, torch.zeros(4, 0)) == 0.0


def test_cosine_freezing_schedule():
    N, kf = 100, 0.4
    assert freeze_ratio_at(0, N, kf) == pytest.approx(0.0)
    assert freeze_ratio_at(N, N, kf) == pytest.approx(kf)
    assert freeze_ratio_at(N // 2, N, kf) == pytest.approx(kf / 2)
    assert freeze_ratio_at(25, N, kf) == pytest.approx(kf * (1 - math.cos(math.pi / 4)) / 2)
    ks = [freeze_ratio_at(n, N, kf) for n in range(N + 1)]
    assert all(a <= b for a, b in zip(ks, ks[1:]))               # it only rises
    # ResNet-20: 19 layers, floor(0.4 * 19) = 7 at the end; a half ramp gets there at mid-task
    targets = [frozen_target(n, N, 19, kf) for n in range(N + 1)]
    assert targets[0] == 0 and targets[-1] == 7 and targets == sorted(targets)
    assert frozen_target(50, N, 19, kf, ramp=0.5) == 7 and frozen_target(40, N, 19, kf, ramp=0.5) == 6
    assert frozen_target(40, N, 19, kf) == 2                     # floor(0.4 * (1 - cos(0.4 pi)) / 2 * 19)
    assert frozen_target(50, N, 19, kf) == 3                     # floor(0.2 * 19)
    assert frozen_target(N, N, 19, 0.0) == 0


def test_topk_selection_accumulates_and_ascending_ignores_scores():
    r = [0.2, 0.9, 0.5, 0.95, 0.1]
    assert by_correlation(r, set(), 2) == [3, 1]
    assert by_correlation(r, {3, 1}, 1) == [2]                   # the frozen stay frozen, the next best joins
    assert by_correlation([0.5, 0.5, 0.5], set(), 2) == [0, 1]   # ties: lower index first
    assert ascending(r, set(), 2) == [0, 1]
    assert ascending(r, {0, 1}, 2) == [2, 3]
    assert by_correlation(r, set(), 0) == []


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_freezing_ratio_outside_unit_interval_is_refused(bad):
    with pytest.raises(ConfigError, match=r"freezing ratio must be in \[0, 1\)"):
        check_ratio(bad)


@pytest.mark.parametrize("shape,kernel,stride,padding", [((2, 3, 7, 7), 3, 1, 1), ((3, 4, 8, 8), 3, 2, 1),
                                                          ((2, 4, 8, 8), 1, 2, 0)])
def test_sampled_receptive_fields_are_the_im2col_columns(shape, kernel, stride, padding):
    # the subspace of eq 5.7 is estimated from a sample of R's columns, gathered without a full im2col
    from pesto.continual.freeze import Layer
    from pesto.continual.ptlf import layer_input_columns
    conv = torch.nn.Conv2d(shape[1], 5, kernel, stride, padding, bias=False)
    layer = Layer(0, "conv", conv, None)
    x = torch.randn(shape)
    full = layer_input_columns(layer, x)
    assert full.shape[0] == shape[1] * kernel * kernel
    pick = torch.randperm(full.shape[1], generator=torch.Generator().manual_seed(0))[:11]
    assert torch.equal(layer_input_columns(layer, x, pick), full[:, pick])
    # R's rows follow the flattened weight: W.flatten(1) @ R is the convolution at those positions
    out = conv(x).permute(1, 0, 2, 3).reshape(5, -1)
    assert torch.allclose(conv.weight.flatten(1) @ full, out, atol=1e-5)
