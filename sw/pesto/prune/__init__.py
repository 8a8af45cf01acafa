"""PE-wise structured pruning regularizers (eq 2.4-2.7).

    reg = Regularizer.for_mode("wpc", model, lam=1e-4, a=1.0)
    loss = criterion(model(x), t) + reg.penalty()

group lasso  (eq 2.4, 2.5):  lam * sum_l sum_i ||W_{l,i}||_2
WPC          (eq 2.6, 2.7):  lam * sum_l sum_i min(||W_{l,i}||_2, delta_l),
                             delta_l = a * mean_i ||W_{l,i}||_2   (detached: a constant)

W_{l,i} is PE group i of layer l (``cg`` input channels x Kh x Kw of one output channel, channels
zero-padded to a multiple of cg: pesto.geometry). The penalty acts on the latent float weights
(what the optimizer updates), as in eq 2.5: ternarization happens in the forward pass only.
A group whose norm reaches delta_l contributes the constant delta_l, hence exactly no gradient.

Float group lasso (mode ``prune``) is minimised by proximal SGD instead of adding the term to the
loss: after each optimizer step every group is soft-thresholded, W_i <- W_i * max(0, 1 - lr*lam /
||W_i||). Same objective, but groups reach exact zero, which subgradient steps never do in float
(they jitter around zero). The ternary modes need no prox: ternarization zeroes small groups.

How weights are grouped is a ``Grouper`` (pesto.prune.groups: PE groups of pesto.geometry, or
single elements); every function here takes one, or an int Cg for PE groups. Which regularizer a
training mode uses is the mode's own declaration (pesto.train.methods, a registry), not a table here.
Sub-nets and prune-and-regrow (AST, Chapter 3): pesto.prune.subnets, pesto.prune.regrow.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .. import geometry
from ..errors import ConfigError
from ..quant.ternary import latent_weight, select_layers, ternary_layers
from .groups import ElementGroups, Grouper, PEGroups, as_grouper


def group_lasso(w: torch.Tensor, cg: int | Grouper) -> torch.Tensor:
    """sum_i ||W_i||_2 over the groups of one layer (eq 2.4's inner sum); cg: PE group size or a Grouper."""
    return as_grouper(cg).norms(w).sum()


@torch.no_grad()
def group_soft_threshold_(w: torch.Tensor, cg: int | Grouper, t: float) -> None:
    """In place: W_i <- W_i * max(0, 1 - t / ||W_i||) for every group (the prox of t*||.||_2)."""
    grouper = as_grouper(cg)
    scale = (1 - t / grouper.norms(w).clamp_min(1e-12)).clamp_min(0)
    if isinstance(grouper, PEGroups):
        scale = scale.repeat_interleave(grouper.cg, dim=1)[:, : w.shape[1]]  # (N, G) -> (N, C), padding dropped
        w.mul_(scale.reshape(scale.shape + (1,) * (w.ndim - 2)))
    else:
        w.mul_(grouper.expand(scale, w.shape))


def wpc_threshold(norms: torch.Tensor, a: float) -> torch.Tensor:
    """delta_l = a * mean group norm (eq 2.7), detached from the graph."""
    return a * norms.detach().mean()


def wpc_penalty(w: torch.Tensor, cg: int | Grouper, a: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sum_i min(||W_i||, delta), delta, clipped mask) of one layer (eq 2.6-2.7)."""
    norms = as_grouper(cg).norms(w)
    delta = wpc_threshold(norms, a)
    clipped = norms >= delta
    return torch.where(clipped, delta, norms).sum(), delta, clipped


def compressed_layers(model: nn.Module, cg: int = 16, keep_first_last: bool = True,
                      cg_overrides: dict | None = None) -> list[tuple[str, nn.Module, int]]:
    """The layers the method compresses: the ternary ones, or (float model) the same selection."""
    model = getattr(model, "module", model)
    layers = ternary_layers(model)
    return layers if layers else select_layers(model, cg, keep_first_last, cg_overrides)


class Regularizer:
    """The structured-sparsity term of one training mode, over (name, module, cg) layers."""

    def __init__(self, layers: list[tuple[str, nn.Module, int]], kind: str | None, lam: float = 0.0,
                 a: float = 1.0, proximal: bool = False):
        if kind not in (None, "lasso", "wpc"):
            raise ConfigError(f"unknown regularizer {kind!r}; use 'lasso' or 'wpc'")
        if lam < 0 or a <= 0:
            raise ConfigError(f"regularizer needs lambda >= 0 and a > 0, got lambda={lam}, a={a}")
        for name, m, cg in layers:
            geometry.check_cg(cg, latent_weight(m).shape[1], f"layer {name!r}")
        if proximal and kind != "lasso":
            raise ConfigError(f"the proximal step is defined for group lasso only, not {kind!r}")
        self.layers, self.kind, self.lam, self.a = layers, kind, float(lam), float(a)
        self.proximal = proximal
        self.last: dict[str, dict[str, float]] = {}  # per-layer delta / clipped fraction of the last call

    @classmethod
    def for_mode(cls, mode: str, model: nn.Module, lam: float = 0.0, a: float = 1.0, cg: int = 16,
                 keep_first_last: bool = True, cg_overrides: dict | None = None) -> "Regularizer":
        """The regularizer training mode ``mode`` declares (pesto.train.methods: penalty, proximal)."""
        from ..train.methods import get_method
        method = get_method(mode)
        return cls(compressed_layers(model, cg, keep_first_last, cg_overrides), method.penalty, lam, a,
                   proximal=method.proximal)

    @property
    def active(self) -> bool:
        return self.kind is not None and self.lam > 0

    def penalty(self) -> torch.Tensor:
        """lam * sum over layers of the group term; zero (no graph) when inactive."""
        if not self.active:
            return torch.zeros(())
        total = 0.0
        stats = {}
        for name, m, cg in self.layers:
            w = latent_weight(m)
            if self.kind == "lasso":
                total = total + group_lasso(w, cg)
            else:
                term, delta, clipped = wpc_penalty(w, cg, self.a)
                total = total + term
                stats[name] = {"delta": float(delta), "clipped": float(clipped.float().mean())}
        self.last = stats
        return self.lam * total

    @torch.no_grad()
    def prox_(self, lr: float) -> None:
        """The proximal step of a proximal regularizer, after the optimizer step at learning rate lr."""
        if self.active and self.proximal:
            for _, m, cg in self.layers:
                group_soft_threshold_(latent_weight(m), cg, lr * self.lam)

    @torch.no_grad()
    def thresholds(self) -> dict[str, dict[str, float]]:
        """Current WPC threshold delta_l and clipped fraction of every layer (for plots/history)."""
        out = {}
        for name, m, cg in self.layers:
            norms = geometry.group_norms(latent_weight(m), cg)
            delta = wpc_threshold(norms, self.a)
            out[name] = {"delta": float(delta), "clipped": float((norms >= delta).float().mean()),
                         "mean_norm": float(norms.mean())}
        return out


def __getattr__(name: str):
    # the mode names used to live here as a table; they are the method registry's now
    if name == "MODES":
        from ..train.methods import method_names
        return method_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["group_lasso", "group_soft_threshold_", "wpc_threshold", "wpc_penalty", "compressed_layers",
           "Regularizer", "Grouper", "PEGroups", "ElementGroups", "as_grouper"]
