"""PE-group geometry: the one definition shared by training, export, reference and hardware.

A conv weight W has shape (N, C, Kh, Kw); a linear weight (N, C) is treated as (N, C, 1, 1).
A PE group is ``cg`` consecutive input channels x Kh x Kw of one output channel. C is
zero-padded up to G * cg with G = ceil(C / cg). Group (n, g) covers input channels
[g*cg, (g+1)*cg). The group indexer holds one bit per (n, g): 1 = the group has a non-zero.

Every function here accepts numpy arrays and torch tensors alike (torch keeps autograd).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def as_4d(w):
    """View a linear weight (N, C) as (N, C, 1, 1); conv weights pass through."""
    if w.ndim == 2:
        return w.reshape(w.shape[0], w.shape[1], 1, 1)
    if w.ndim != 4:
        raise ConfigError(f"expected a weight of shape (N, C, Kh, Kw) or (N, C), got {tuple(w.shape)}")
    return w


def check_cg(cg: int, in_channels: int | None = None, where: str = "layer") -> int:
    """Validate a group size. A cg larger than the layer's channel count is refused."""
    if not isinstance(cg, (int, np.integer)) or cg < 1:
        raise ConfigError(f"{where}: group size Cg must be a positive integer, got {cg!r}")
    if in_channels is not None and cg > in_channels:
        raise ConfigError(
            f"{where}: Cg={cg} is larger than the layer's {in_channels} input channels; "
            f"use Cg <= {in_channels} for this layer (set it per layer with --cg-override)")
    return int(cg)


def num_groups(in_channels: int, cg: int) -> int:
    """G = ceil(C / cg): groups per output channel."""
    return math.ceil(in_channels / cg)


def padded_channels(in_channels: int, cg: int) -> int:
    return num_groups(in_channels, cg) * cg


def pad_channels(w, cg: int):
    """Zero-pad the input-channel axis of a 4-D weight up to a multiple of cg."""
    w = as_4d(w)
    pad = padded_channels(w.shape[1], cg) - w.shape[1]
    if pad == 0:
        return w
    if _is_torch(w):
        import torch.nn.functional as F
        return F.pad(w, (0, 0, 0, 0, 0, pad))
    return np.pad(w, ((0, 0), (0, pad), (0, 0), (0, 0)))


def group_view(w, cg: int):
    """(N, C, Kh, Kw) -> (N, G, cg * Kh * Kw): one row per PE group, padded channels as zeros."""
    w = pad_channels(w, cg)
    n, c, kh, kw = w.shape
    return w.reshape(n, c // cg, cg * kh * kw)


def group_norms(w, cg: int):
    """L2 norm of every PE group, shape (N, G) (eq 2.4's P(W_{l,i}))."""
    g = group_view(w, cg)
    if _is_torch(g):
        return g.norm(dim=2)
    return np.sqrt((g.astype(np.float64) ** 2).sum(axis=2))


def group_indexer(w, cg: int):
    """Boolean (N, G): True where the group holds at least one non-zero weight."""
    g = group_view(w, cg)
    if _is_torch(g):
        return (g != 0).any(dim=2)
    return (g != 0).any(axis=2)


def expand_group_mask(mask, cg: int, in_channels: int, kh: int = 1, kw: int = 1):
    """bool (N, G) -> bool (N, C, Kh, Kw): each group's bit over its cg channels and every tap,
    the zero-padded channels past ``in_channels`` dropped. Inverse of ``group_indexer`` on a
    mask that is constant over each group."""
    n, g = mask.shape
    if g != num_groups(in_channels, cg):
        raise ConfigError(f"group mask has {g} groups per channel, {in_channels} channels in groups of "
                          f"{cg} need {num_groups(in_channels, cg)}")
    if _is_torch(mask):
        full = mask.repeat_interleave(cg, dim=1)[:, :in_channels]
        return full[:, :, None, None].expand(n, in_channels, kh, kw)
    full = np.repeat(np.asarray(mask, dtype=bool), cg, axis=1)[:, :in_channels]
    return np.broadcast_to(full[:, :, None, None], (n, in_channels, kh, kw))
