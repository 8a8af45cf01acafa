"""Ternarization of eq 2.1-2.3 with a straight-through estimator.

    Delta_l = 0.05 * max|W_l|
    alpha_l = mean |w| over |w| > Delta_l          (0 when no weight passes)
    w_hat   = alpha_l * sign(w) * [|w| > Delta_l]

Applied with torch.nn.utils.parametrize: the module keeps its latent float weight in
``parametrizations.weight.original`` and every forward sees ``alpha * codes``. The backward
pass is the identity (STE): dL/dw = dL/dw_hat.

Sub-nets (docs/subnets.md, pesto.prune.subnets): a ``Ternarize`` may hold K masks over its
layer's groups, one per sub-net, and an active index. Then Delta_l still comes from the whole
shared latent weight (the codes are shared), the active sub-net's weights are
``alpha_k * codes * keep_k`` with alpha_k the mean |w| over the kept weights above Delta_l,
and the straight-through gradient reaches only the kept weights.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from .. import geometry
from ..errors import ConfigError

DELTA_RATIO = 0.05


def ternary_threshold(w: torch.Tensor) -> torch.Tensor:
    """Delta_l = 0.05 * max|W_l| (eq 2.1)."""
    return DELTA_RATIO * w.detach().abs().max()


@torch.no_grad()
def ternarize(w: torch.Tensor, keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes int8 in {-1,0,+1}, alpha scalar tensor) of a latent weight (eq 2.1-2.2).

    keep: optional bool tensor of w's shape (a sub-net's group mask, expanded): weights outside it
    get code 0 and do not count in alpha; Delta_l is always taken over the whole of w.
    """
    a = w.abs()
    mask = a > DELTA_RATIO * a.max()
    if keep is not None:
        mask = mask & keep
    codes = (torch.sign(w) * mask).to(torch.int8)
    # mean over the mask as sum / count: no boolean indexing, no host sync (runs every forward)
    count = mask.sum()
    alpha = (a * mask).sum() / count.clamp(min=1)
    return codes, alpha


class Ternarize(nn.Module):
    """Parametrization: latent weight -> alpha * ternary codes, straight-through gradient.

    ``cg`` is the PE-group size of this layer, read by the regularizers, metrics and exporter.

    Sub-nets: ``masks`` is None (a plain ternary layer) or a bool buffer (K, *mask shape) of K
    sub-net masks over ``grouper``'s groups (pesto.prune.groups; PE groups by default), and
    ``active`` the sub-net the forward computes. pesto.prune.subnets sets them up.
    ``capture = True`` keeps the next backward's dense gradient dL/dw_hat in ``captured`` (the
    regrow criterion needs it for the masked-out groups too).
    """

    def __init__(self, cg: int = 16):
        super().__init__()
        self.cg = int(cg)
        self.register_buffer("masks", None)   # None buffers are not in the state dict
        self.grouper = None
        self.active = 0
        self.capture = False
        self.captured: torch.Tensor | None = None

    def keep_mask(self, w: torch.Tensor) -> torch.Tensor | None:
        """The active sub-net's mask expanded to w's shape (None: no sub-nets, every weight)."""
        if self.masks is None:
            return None
        return self.grouper.expand(self.masks[self.active], w.shape)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        keep = self.keep_mask(w)
        codes, alpha = ternarize(w, keep)
        w_hat = alpha * codes.to(w.dtype)
        # straight-through: the value is exactly w_hat (w - w is exactly 0), the gradient passes to w
        if keep is None:
            return w_hat + (w - w.detach())
        out = w_hat + (w - w.detach()) * keep   # ... and only to the active sub-net's weights
        if self.capture and out.requires_grad:
            out.register_hook(self._store)
        return out

    def _store(self, grad: torch.Tensor) -> None:
        self.captured = grad.detach().clone()

    def extra_repr(self) -> str:
        return f"cg={self.cg}"


def is_ternary(module: nn.Module) -> bool:
    return parametrize.is_parametrized(module, "weight") and any(
        isinstance(p, Ternarize) for p in module.parametrizations.weight)


def ternary_param(module: nn.Module) -> Ternarize:
    """The Ternarize parametrization of a ternary layer."""
    return next(p for p in module.parametrizations.weight if isinstance(p, Ternarize))


@torch.no_grad()
def ternary_codes(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes, alpha) the layer's forward uses: eq 2.1-2.2, within the active sub-net if it has sub-nets."""
    p = ternary_param(module)
    w = module.parametrizations.weight.original
    return ternarize(w, p.keep_mask(w))


def ternary_layers(model: nn.Module) -> list[tuple[str, nn.Module, int]]:
    """(qualified name, module, cg) of every ternarized conv/linear, in module order."""
    out = []
    for name, m in model.named_modules():
        if is_ternary(m):
            out.append((name, m, ternary_param(m).cg))
    return out


def latent_weight(module: nn.Module) -> torch.Tensor:
    """The float weight the optimizer updates (the module's own weight if not ternarized)."""
    if is_ternary(module):
        return module.parametrizations.weight.original
    return module.weight


def select_layers(model: nn.Module, cg: int = 16, keep_first_last: bool = True,
                  cg_overrides: dict[str, int] | None = None,
                  skip: tuple[str, ...] = ()) -> list[tuple[str, nn.Module, int]]:
    """(qualified name, module, cg) of the nn.Conv2d / nn.Linear layers that get compressed.

    The one rule shared by ternarization and the float group-lasso baseline: every conv/linear
    except ``skip`` (and the first and last one when keep_first_last), with the group size
    ``cg_overrides.get(name, min(cg, C))``. A cg larger than a layer's input channels is clamped
    to them unless given explicitly as an override (then it is refused).
    """
    cg_overrides = dict(cg_overrides or {})
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not layers:
        raise ConfigError("ternarize_model: the model has no nn.Conv2d or nn.Linear layer")
    names = [n for n, _ in layers]
    for key in cg_overrides:
        if key not in names:
            raise ConfigError(f"cg override for unknown layer {key!r}; layers are: {', '.join(names)}")
    geometry.check_cg(cg, None, "model")
    keep = set(skip)
    if keep_first_last:
        keep |= {names[0], names[-1]}
    out = []
    for name, m in layers:
        if name in keep:
            continue
        if isinstance(m, nn.Conv2d) and m.groups != 1:
            raise ConfigError(f"layer {name!r}: grouped/depthwise convolution (groups={m.groups}) "
                              f"is not supported; PE groups assume dense convolutions")
        c = latent_weight(m).shape[1]
        out.append((name, m, geometry.check_cg(cg_overrides.get(name, min(cg, c)), c, f"layer {name!r}")))
    return out


def ternarize_model(model: nn.Module, cg: int = 16, keep_first_last: bool = True,
                    cg_overrides: dict[str, int] | None = None,
                    skip: tuple[str, ...] = ()) -> nn.Module:
    """Ternarize every nn.Conv2d / nn.Linear of ``model`` in place, in one call.

    keep_first_last: leave the first and the last of those layers in full precision (the
    seed's setting). cg_overrides: per-layer group size by qualified name. A cg larger than
    a layer's input channels is clamped to them for that layer (e.g. a 3-channel stem).
    """
    for name, m, layer_cg in select_layers(model, cg, keep_first_last, cg_overrides, skip):
        if not is_ternary(m):
            parametrize.register_parametrization(m, "weight", Ternarize(layer_cg))
    return model
