"""Progressive task-correlated layer freezing (sections 5.2.2-5.2.3): subspaces, correlation, schedule.

Before task t (t > 1), with the model w_{t-1}:

1. **Subspace of prior tasks (eq 5.7).** Every sample of the replay buffer is forwarded; layer l's
   representation matrix R^l holds the inputs its weight multiplies: for a convolution, each
   receptive field (the im2col column, Cin*kh*kw values) at each output position. Its left singular
   vectors, kept until the first k carry an ``energy`` share of ||R^l||_F^2, are the basis B^l.
   R^l has Cin*kh*kw rows but (buffer size x positions) columns, so the SVD is taken through the
   Gram matrix R R' (its eigenvectors are R's left singular vectors, its eigenvalues sigma^2),
   accumulated over the buffer in float64 without ever holding R.
2. **Task correlation (eq 5.6).** The gradient G^l of the current task's loss at w_{t-1} (on a
   probe batch of the new task), reshaped to (Cout, Cin*kh*kw), projected on the subspace:
   r_l = ||G^l B^l B^l'||_F / ||G^l||_F = ||G^l B^l||_F / ||G^l||_F, in [0, 1].
3. **Progressive freezing (eq 5.8, 5.9).** The frozen share rises from k_i = 0 to k_f (the freezing
   ratio) on a cosine, k(n) = k_f + (k_i - k_f) (1 + cos(pi n / N)) / 2, evaluated at every
   optimisation step n of the task's N (over the first ``ramp`` share of them; 1 = the whole task).
   Eq 5.8 as printed, k_i + (k_f - k_i)(1 + cos(pi n/N))/2, starts at k_f and falls to k_i, which
   contradicts "progressively increase" and the accumulation rule; this is the increasing reading.
   Whenever floor(k(n) * L) exceeds the number of frozen layers, the unfrozen layers with the
   highest r_l are frozen (TopK, eq 5.9); frozen layers stay frozen until the task ends.

The ablation of table 24 freezes in ascending layer index (first layers first) on the same schedule.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .freeze import Layer


# -- eq 5.7 ---------------------------------------------------------------------------------------
def energy_rank(sigma: torch.Tensor, energy: float) -> int:
    """The smallest k with sum_{i<=k} sigma_i^2 >= energy * sum_i sigma_i^2 (sigma descending)."""
    if not 0.0 < energy <= 1.0:
        raise ConfigError(f"energy threshold must be in (0, 1], got {energy}")
    s2 = sigma.double().pow(2)
    total = float(s2.sum())
    if total == 0.0:
        return 0
    cum = torch.cumsum(s2, 0)
    k = int(torch.searchsorted(cum, torch.tensor(energy * total, dtype=cum.dtype) * (1 - 1e-12)))
    return min(k + 1, len(sigma))


def subspace_basis(R: torch.Tensor, energy: float) -> torch.Tensor:
    """B = the first k left singular vectors of R (m x n), k = energy_rank (eq 5.7): (m, k)."""
    U, S, _ = torch.linalg.svd(R.double(), full_matrices=False)
    return U[:, :energy_rank(S, energy)]


def basis_from_gram(gram: torch.Tensor, energy: float) -> torch.Tensor:
    """The same basis from G = R R' (m x m): eigenvectors by descending eigenvalue sigma^2."""
    evals, evecs = torch.linalg.eigh(gram.double())
    order = torch.argsort(evals, descending=True)
    sigma = evals[order].clamp(min=0).sqrt()
    return evecs[:, order][:, :energy_rank(sigma, energy)]


def layer_input_columns(layer: Layer, x: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
    """The columns of R^l that input batch x contributes: (Cin*kh*kw, N*positions), column
    n*positions + (oy*Wout + ox) being sample n's receptive field at output (oy, ox), in the
    (Cin, kh, kw) order of the flattened weight. ``columns``: only those columns, gathered straight
    from the input (no full im2col)."""
    c = layer.conv
    if c.groups != 1:
        raise ConfigError(f"{layer.name}: task correlation of grouped convolutions is not supported")
    if columns is None:
        cols = F.unfold(x, c.kernel_size, c.dilation, c.padding, c.stride)   # (N, Cin*kh*kw, P)
        return cols.transpose(0, 1).reshape(cols.shape[1], -1)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = c.kernel_size, c.stride, c.padding, c.dilation
    h_out = (x.shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    w_out = (x.shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    n, pos = columns // (h_out * w_out), columns % (h_out * w_out)
    rows = (pos // w_out * sh).view(-1, 1, 1) + (torch.arange(kh, device=x.device) * dh).view(1, kh, 1)
    cols_x = (pos % w_out * sw).view(-1, 1, 1) + (torch.arange(kw, device=x.device) * dw).view(1, 1, kw)
    patches = F.pad(x, (pw, pw, ph, ph))[n.view(-1, 1, 1), :, rows, cols_x]      # (k, kh, kw, Cin)
    return patches.permute(0, 3, 1, 2).reshape(len(columns), -1).T


def max_columns(m: int) -> int:
    """How many columns of R^l (receptive fields) the subspace of an m-row layer is estimated from."""
    return max(8 * m, 4096)


@torch.no_grad()
def input_grams(backbone: torch.nn.Module, layers: list[Layer], batches, n_samples: int,
                g: torch.Generator | None = None) -> list[torch.Tensor]:
    """R R' for every layer (float64), the backbone in eval mode, over ``batches`` (n_samples images
    in all). A layer whose R would have more than max_columns(m) columns keeps a uniform random
    subset of that many receptive fields (drawn from ``g``): the basis of eq 5.7 needs a few times m
    columns, not all of them, and the whole R of an early layer is hundreds of thousands wide."""
    g = g or torch.Generator().manual_seed(0)
    dims = [l.conv.in_channels // l.conv.groups * math.prod(l.conv.kernel_size) for l in layers]
    grams = [torch.zeros(m, m, dtype=torch.float64) for m in dims]
    hooks = []
    for layer, gram, m in zip(layers, grams, dims):
        def pre(mod, inp, layer=layer, gram=gram, m=m):
            x = inp[0].detach().float()
            c = layer.conv
            positions = math.prod((size + 2 * p - d * (k - 1) - 1) // s + 1 for size, k, s, p, d in
                                  zip(x.shape[2:], c.kernel_size, c.stride, c.padding, c.dilation))
            total = x.shape[0] * positions
            keep = min(total, math.ceil(max_columns(m) * x.shape[0] / max(n_samples, 1)))
            pick = None if keep >= total else torch.randperm(total, generator=g)[:keep].to(x.device)
            cols = layer_input_columns(layer, x, pick)
            gram.add_((cols @ cols.T).double().cpu())
        hooks.append(layer.conv.register_forward_pre_hook(pre))
    was = backbone.training
    backbone.eval()
    try:
        for x in batches:
            backbone(x)
    finally:
        backbone.train(was)
        for h in hooks:
            h.remove()
    return grams


# -- eq 5.6 ---------------------------------------------------------------------------------------
def correlation_ratio(grad: torch.Tensor, basis: torch.Tensor) -> float:
    """r = ||G B B'||_F / ||G||_F for G (Cout, m) (a conv gradient is flattened) and B (m, k)."""
    g = grad.detach().reshape(grad.shape[0], -1).double()
    norm = float(g.norm())
    if norm == 0.0:
        return 0.0
    if basis.shape[1] == 0:
        return 0.0
    return float((g @ basis.double()).norm()) / norm


# -- eq 5.8 / 5.9 ---------------------------------------------------------------------------------
def freeze_ratio_at(step: int, total: int, final: float, initial: float = 0.0, ramp: float = 1.0) -> float:
    """k(n): the frozen share after ``step`` of ``total`` steps, cosine from ``initial`` to ``final``
    over the first ``ramp`` share of the steps, then flat."""
    if total <= 0:
        return initial
    span = max(ramp * total, 1e-12)
    frac = min(max(step / span, 0.0), 1.0)
    return final + (initial - final) * (1 + math.cos(math.pi * frac)) / 2


def frozen_target(step: int, total: int, n_layers: int, ratio: float, ramp: float = 1.0) -> int:
    """floor(k(n) * L): how many layers are frozen after ``step`` steps."""
    return int(math.floor(freeze_ratio_at(step, total, ratio, 0.0, ramp) * n_layers + 1e-9))


def check_ratio(ratio: float) -> None:
    if not (isinstance(ratio, (int, float)) and 0.0 <= ratio < 1.0):
        raise ConfigError(f"freezing ratio must be in [0, 1) (the share of layers frozen at the end of a "
                          f"task; the seed uses 0.4), got {ratio}")


def by_correlation(scores: list[float], frozen: set[int], n_new: int) -> list[int]:
    """TopK of eq 5.9: the unfrozen layers with the highest r_l (ties: the lower index first)."""
    free = sorted((i for i in range(len(scores)) if i not in frozen), key=lambda i: (-scores[i], i))
    return free[:max(n_new, 0)]


def ascending(scores: list[float], frozen: set[int], n_new: int) -> list[int]:
    """The table 24 baseline: the first unfrozen layers in forward order, whatever their r_l."""
    return [i for i in range(len(scores)) if i not in frozen][:max(n_new, 0)]


# freezing order name -> (selector(scores, frozen, n_new) -> layer indices, needs r_l)
ORDERS: dict[str, tuple[Callable[[list[float], set[int], int], list[int]], bool]] = {
    "correlation": (by_correlation, True),
    "ascending": (ascending, False),
}


def task_correlations(learner, layers: list[Layer], buffer_batches, probe_pairs, energy: float,
                      g: torch.Generator | None = None) -> list[float]:
    """r_l of every layer (eq 5.6) from the buffer's subspaces (eq 5.7) and the gradient of the
    learner's loss on the probe view pairs, at the current weights. Leaves no gradient behind and
    the BatchNorm statistics as they were."""
    grams = input_grams(learner.backbone, layers, buffer_batches, sum(len(b) for b in buffer_batches), g)
    bases = [basis_from_gram(g, energy) for g in grams]
    params = [p for p in learner.parameters() if p.requires_grad]
    for p in params:
        p.grad = None
    buffers = [b.clone() for b in learner.buffers()]   # the probe must not move BN statistics
    for x1, x2 in probe_pairs:
        learner(x1, x2).backward()
    with torch.no_grad():
        for b, saved in zip(learner.buffers(), buffers):
            b.copy_(saved)
    r = [correlation_ratio(l.conv.weight.grad if l.conv.weight.grad is not None else torch.zeros_like(l.conv.weight),
                           b) for l, b in zip(layers, bases)]
    for p in params:
        p.grad = None
    return r
