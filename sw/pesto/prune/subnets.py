"""Sub-nets in one network: K group masks over shared ternary weights, one BatchNorm set each.

    make_subnets(model, ["s30", "s50", "s70"])   masks (all on) + switchable BN; model.select_subnet
    model.select_subnet(1)                       sub-net 1 (or by name) computes from now on
    masks = subnet_masks(model)                  the masks as data: per layer bool (K, *mask shape)
    plain = extract_subnet(model, "s50")         a plain single network: what sub-net s50 computes

A sub-net model is a ternarized model (pesto.quant) whose every ternary layer's ``Ternarize``
holds a bool buffer ``masks`` of shape (K, N, G) (PE groups, pesto.geometry) or (K, *weight
shape) (element groups) and whose every ``nn.BatchNorm2d`` is a ``SwitchBatchNorm2d`` of K
BatchNorms. Both live in the state dict, so a checkpoint holds every mask and BN set. The rule
of shared ternary codes (docs/training.md): Delta_l and the codes come from the shared latent
weight; sub-net k computes alpha_{l,k} * codes_l * mask_{l,k} followed by its BN_k, with alpha_{l,k}
the mean |w| over the weights above Delta_l inside its groups.
"""

from __future__ import annotations

import copy
import os
import types

import torch
import torch.nn as nn

from ..errors import CheckpointError, ConfigError
from ..quant.ternary import is_ternary, ternary_layers, ternary_param
from .groups import Grouper, make_grouper

NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
MAX_SUBNETS = 16   # what the artifact holds (docs/subnets.md)


class SwitchBatchNorm2d(nn.Module):
    """K BatchNorm2d over the same channels; ``active`` picks the one the forward uses (the
    authors' SwitchBatchNorm2d). Only the active set learns and tracks statistics."""

    def __init__(self, bn: nn.BatchNorm2d, k: int):
        super().__init__()
        self.bns = nn.ModuleList(copy.deepcopy(bn) for _ in range(k))
        self.active = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bns[self.active](x)

    def extra_repr(self) -> str:
        return f"subnets={len(self.bns)}, active={self.active}"


def check_names(names: list[str]) -> list[str]:
    names = [str(n) for n in names]
    if not 1 <= len(names) <= MAX_SUBNETS:
        raise ConfigError(f"need 1..{MAX_SUBNETS} sub-nets, got {len(names)}")
    for n in names:
        if not 1 <= len(n) <= 32 or set(n) - NAME_CHARS:
            raise ConfigError(f"sub-net name {n!r}: use 1-32 characters of [A-Za-z0-9_.-]")
    if len(set(names)) != len(names):
        raise ConfigError(f"sub-net names must be unique, got {names}")
    return names


def make_subnets(model: nn.Module, names: list[str], granularity: str = "group") -> nn.Module:
    """Give a ternarized model K = len(names) sub-nets, in place: every mask on, every BN switchable.

    granularity: "group" (PE groups, what the accelerator skips) or "element" (single weights,
    for element N:M on GPUs). Adds ``model.select_subnet(k)``.
    """
    names = check_names(names)
    layers = ternary_layers(model)
    if not layers:
        raise ConfigError("make_subnets: the model has no ternary layer; ternarize it first "
                          "(pesto.quant.ternarize_model)")
    k = len(names)
    for _, m, cg in layers:
        p = ternary_param(m)
        grouper = make_grouper(granularity, cg)
        w = m.parametrizations.weight.original
        p.grouper = grouper
        p.masks = torch.ones((k, *grouper.mask_shape(w.shape)), dtype=torch.bool, device=w.device)
        p.active = 0
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, child_name, SwitchBatchNorm2d(child, k))
    model.subnet_names = names
    model.active_subnet = 0
    model.select_subnet = types.MethodType(select_subnet, model)
    return model


def is_subnet_model(model: nn.Module) -> bool:
    return bool(getattr(_unwrap(model), "subnet_names", None))


def _unwrap(model):
    return getattr(model, "module", model)


def _require(model, what: str) -> nn.Module:
    if isinstance(model, (dict, str, os.PathLike)):
        from ..train.checkpoint import model_from_checkpoint
        model = model_from_checkpoint(model)
    model = _unwrap(model)
    if not is_subnet_model(model):
        raise CheckpointError(f"{what}: this model has no sub-net masks (it was not trained with "
                              f"`pesto train --mode ast`); load an AST checkpoint")
    return model


def subnet_index(model: nn.Module, key) -> int:
    """Index of sub-net ``key`` (an index or a name); ConfigError naming the choices."""
    names = _require(model, "subnet_index").subnet_names
    if isinstance(key, str) and key in names:
        return names.index(key)
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(names):
        return key
    raise ConfigError(f"no sub-net {key!r}: this model has {len(names)} ({', '.join(names)}); "
                      f"give an index 0..{len(names) - 1} or a name")


def select_subnet(model, key) -> int:
    """Make sub-net ``key`` (index or name) the one the model computes; returns its index.

    ``model`` may be a sub-net model (or its DDP wrapper); a checkpoint without masks is refused
    with a CheckpointError."""
    model = _require(model, "select_subnet")
    k = subnet_index(model, key)
    for m in model.modules():
        if isinstance(m, SwitchBatchNorm2d):
            m.active = k
        elif is_ternary(m):
            p = ternary_param(m)
            if p.masks is not None:
                p.active = k
    model.active_subnet = k
    return k


def num_subnets(model: nn.Module) -> int:
    return len(_unwrap(model).subnet_names) if is_subnet_model(model) else 1


def switch_batchnorms(model: nn.Module) -> list[tuple[str, SwitchBatchNorm2d]]:
    return [(n, m) for n, m in _unwrap(model).named_modules() if isinstance(m, SwitchBatchNorm2d)]


class SubnetMasks:
    """The masks of a sub-net model as data: {layer: bool (K, *mask shape)} (views, not copies).

    ``group_sparsity(k)`` is the fraction of groups sub-net k masks out, over all layers;
    ``overlap(i, j)`` per layer the fraction of groups whose bit differs (XOR, figure 14)."""

    def __init__(self, model: nn.Module):
        model = _require(model, "subnet_masks")
        self.names = list(model.subnet_names)
        self.layers: dict[str, torch.Tensor] = {}
        self.groupers: dict[str, Grouper] = {}
        for name, m, _ in ternary_layers(model):
            p = ternary_param(m)
            self.layers[name] = p.masks
            self.groupers[name] = p.grouper

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.layers[name]

    def mask(self, name: str, k: int) -> torch.Tensor:
        return self.layers[name][k]

    def layer_sparsity(self, k: int) -> dict[str, float]:
        return {n: 1.0 - float(m[k].float().mean()) for n, m in self.layers.items()}

    def group_sparsity(self, k: int) -> float:
        off = sum(int((~m[k]).sum()) for m in self.layers.values())
        return off / max(sum(m[k].numel() for m in self.layers.values()), 1)

    def overlap(self, i: int, j: int) -> dict[str, float]:
        return {n: float((m[i] ^ m[j]).float().mean()) for n, m in self.layers.items()}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {n: m.detach().cpu().clone() for n, m in self.layers.items()}


def subnet_masks(model) -> SubnetMasks:
    return SubnetMasks(model)


def extract_subnet(model, key) -> nn.Module:
    """A plain network (a copy) that computes sub-net ``key``: its BatchNorms are plain
    ``nn.BatchNorm2d`` (sub-net k's), each ternary layer keeps only sub-net k's mask. What the
    exporter traces: every sub-net gives the same graph, with the usual layer names."""
    model = _require(model, "extract_subnet")
    k = subnet_index(model, key)
    plain = copy.deepcopy(model)
    for parent in list(plain.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, SwitchBatchNorm2d):
                setattr(parent, child_name, child.bns[k])
    for _, m, _ in ternary_layers(plain):
        p = ternary_param(m)
        p.masks = p.masks[k:k + 1].clone()
        p.active = 0
    for attr in ("subnet_names", "select_subnet", "active_subnet"):
        plain.__dict__.pop(attr, None)
    plain.subnet_of = (list(model.subnet_names), k)   # provenance, not structure
    return plain
