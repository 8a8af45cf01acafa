"""Sparsity and compression metrics of tables 2, 3, 5, 6 and eq 2.8, per layer and per model.

Measured on the weights the hardware stores: the ternary codes of ternarized layers (eq 2.1),
the float weights of float layers (a float weight counts as zero when |w| <= FLOAT_ZERO * max|W|,
since group lasso drives groups towards, not exactly to, zero). Over the compressed layers only
(first/last layers stay float and on the host, as in the seed). For one layer with PE groups of
``cg`` channels (channels zero-padded to a multiple of cg, pesto.geometry):

    group sparsity     Gs  = all-zero groups / groups                       (tables 2, 3, 5, 6)
    layer sparsity         = zero weights / weights                         (table 2 "Layer")
    in-group sparsity      = zero weights in non-zero groups / weights in non-zero groups (table 2)
    overall sparsity       = zero weights / weights, over all compressed layers (tables 3, 5, 6)
    compression rate   C   = 32 / ((1 - Gs) * n), n = 2 for ternary, 32 for float   (eq 2.8)

Padded channels are not weights: they count in no weight total, only in the group shape. The
model's Gs is all-zero groups over all groups across layers (eq 2.8). ``storage_rate`` is the
exact ratio 32-bit weights / (2-bit codes of non-zero groups incl. padding + 1-bit indexer).

A model with sub-nets (pesto.prune.subnets) is measured as its active sub-net computes it;
``subnet_metrics`` measures every sub-net and adds each one's mask sparsity.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from . import geometry
from .quant.ternary import is_ternary, latent_weight, ternary_codes

FLOAT_ZERO = 1e-3
TERNARY_BITS = 2
FLOAT_BITS = 32


def compression_rate(group_sparsity: float, bits: int = TERNARY_BITS) -> float:
    """Eq 2.8: C = 32 / ((1 - Gs) * n)."""
    if group_sparsity >= 1.0:
        return float("inf")
    return FLOAT_BITS / ((1.0 - group_sparsity) * bits)


@torch.no_grad()
def stored_weight(module: nn.Module) -> tuple[torch.Tensor, int]:
    """(the weight as the hardware sees it with zeros exact, its bit width)."""
    if is_ternary(module):
        codes, _ = ternary_codes(module)   # within the active sub-net, if the model has sub-nets
        return codes.float(), TERNARY_BITS
    w = latent_weight(module).detach()
    tol = FLOAT_ZERO * w.abs().max()
    return torch.where(w.abs() <= tol, torch.zeros_like(w), w), FLOAT_BITS


@torch.no_grad()
def weight_counts(w: torch.Tensor, cg: int) -> dict[str, int]:
    """Raw counts of one layer's weight (zeros exact): the numbers every ratio is built from."""
    w4 = geometry.as_4d(w)
    n, c, kh, kw = w4.shape
    nonzero_group = geometry.group_indexer(w4, cg)                       # (N, G)
    per_channel = (w4 != 0).reshape(n, c, kh * kw).sum(-1)              # (N, C) non-zeros
    g = geometry.num_groups(c, cg)
    ch_group = (torch.arange(c) // cg)                                   # channel -> group
    real_in_nonzero_groups = int(nonzero_group[:, ch_group].sum()) * kh * kw
    return {
        "weights": n * c * kh * kw,
        "zeros": int((w4 == 0).sum()),
        "groups": n * g,
        "zero_groups": int((~nonzero_group).sum()),
        "weights_in_nonzero_groups": real_in_nonzero_groups,
        "nonzeros": int(per_channel.sum()),
        "group_size": cg * kh * kw,
    }


def _ratios(k: dict, bits: int) -> dict[str, float]:
    gs = k["zero_groups"] / k["groups"]
    nz_w = k["weights_in_nonzero_groups"]
    return {
        "group_sparsity": gs,
        "layer_sparsity": k["zeros"] / k["weights"],
        "in_group_sparsity": (nz_w - k["nonzeros"]) / nz_w if nz_w else 0.0,
        "compression_rate": compression_rate(gs, bits),
    }


@torch.no_grad()
def layer_metrics(module: nn.Module, cg: int) -> dict:
    w, bits = stored_weight(module)
    k = weight_counts(w, cg)
    return {**k, **_ratios(k, bits), "bits": bits, "cg": cg, "shape": list(w.shape)}


@torch.no_grad()
def model_metrics(model: nn.Module, layers: list[tuple[str, nn.Module, int]] | None = None) -> dict:
    """{'layers': {name: layer metrics}, plus the model totals}; layers default to the ternary ones
    (pesto.prune.compressed_layers gives the float selection for fp/prune models)."""
    if layers is None:
        from .prune import compressed_layers
        layers = compressed_layers(model)
    per = {name: layer_metrics(m, cg) for name, m, cg in layers}
    tot = {key: sum(v[key] for v in per.values())
           for key in ("weights", "zeros", "groups", "zero_groups", "weights_in_nonzero_groups", "nonzeros")}
    bits = max((v["bits"] for v in per.values()), default=FLOAT_BITS)
    r = _ratios(tot, bits) if per else {}
    stored_bits = sum(v["bits"] * (v["groups"] - v["zero_groups"]) * v["group_size"] + v["groups"]
                      for v in per.values())
    return {
        "layers": per,
        **tot,
        "overall_sparsity": r.get("layer_sparsity", 0.0),
        "group_sparsity": r.get("group_sparsity", 0.0),
        "in_group_sparsity": r.get("in_group_sparsity", 0.0),
        "compression_rate": r.get("compression_rate", 1.0),
        "storage_rate": FLOAT_BITS * tot["weights"] / stored_bits if stored_bits else float("inf"),
        "bits": bits,
    }


@torch.no_grad()
def subnet_metrics(model: nn.Module, layers: list[tuple[str, nn.Module, int]] | None = None) -> list[dict]:
    """``model_metrics`` of every sub-net of a sub-net model (pesto.prune.subnets), in index order,
    each with its name and its mask's own sparsity (``mask_sparsity``: the groups it masks out,
    model and per layer; the metrics above count groups whose *codes* are all zero, which includes
    those). The active sub-net is restored afterwards."""
    from .prune.subnets import SubnetMasks, select_subnet
    masks = SubnetMasks(model)
    active = getattr(getattr(model, "module", model), "active_subnet", 0)
    out = []
    try:
        for k, name in enumerate(masks.names):
            select_subnet(model, k)
            m = model_metrics(model, layers)
            m["name"], m["mask_sparsity"] = name, masks.group_sparsity(k)
            for lname, v in masks.layer_sparsity(k).items():
                if lname in m["layers"]:
                    m["layers"][lname]["mask_sparsity"] = v
            out.append(m)
    finally:
        select_subnet(model, active)
    return out
