"""The PyTorch side of the integer contract: every exported layer in torch integer arithmetic.

Written independently of pesto.numerics' numpy functions (only the bit-width constants are
shared), so the tests that compare it with the numpy reference compare two implementations:

    acc = conv2d(x, codes) in float64          exact: integer terms, |acc| < 2**31 < 2**53
    v   = acc * mult + bias                    int64
    v   = (v + (1 << (shift - 1))) >> shift   arithmetic shift, round half up (shift 0: identity)
    v   = max(v, 0) if relu;  y = clamp(v, -32768, 32767) as int16

``TorchTernaryConv`` is an nn.Module; ``conv`` adapts it to the ``conv=`` hook of
pesto.reference.network.run, so a whole network can run with its accelerated layers in torch.
``quantize`` / ``add`` are the torch forms of the host-side glue.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ir import TernaryConv
from ..numerics import ACT_MAX, ACT_MIN


def _round_shift(v: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    half = torch.where(shift > 0, torch.ones_like(shift) << (shift - 1).clamp_min(0), torch.zeros_like(shift))
    return (v + half) >> shift


class TorchTernaryConv(nn.Module):
    """One accelerated layer in torch: int16 (B, C, H, W) -> int16 (B, N, Ho, Wo)."""

    def __init__(self, layer: TernaryConv):
        super().__init__()
        self.name = layer.name
        self.stride, self.padding, self.relu = layer.stride, layer.padding, bool(layer.relu)
        self.register_buffer("codes", torch.from_numpy(layer.codes.astype(np.float64)))
        self.register_buffer("mult", torch.from_numpy(layer.mult.astype(np.int64)).view(1, -1, 1, 1))
        self.register_buffer("shift", torch.from_numpy(layer.shift.astype(np.int64)).view(1, -1, 1, 1))
        self.register_buffer("bias", torch.from_numpy(layer.bias.astype(np.int64)).view(1, -1, 1, 1))

    def accumulate(self, x: torch.Tensor) -> torch.Tensor:
        """int64 accumulators (they fit in int32: the exporter checked the fan-in)."""
        acc = F.conv2d(x.to(torch.float64), self.codes, stride=self.stride, padding=self.padding)
        return acc.to(torch.int64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.int16:
            raise TypeError(f"layer {self.name!r}: expects int16 activations, got {x.dtype}")
        v = _round_shift(self.accumulate(x) * self.mult + self.bias, self.shift)
        if self.relu:
            v = v.clamp_min(0)
        return v.clamp(ACT_MIN, ACT_MAX).to(torch.int16)


def conv(x: np.ndarray, layer: TernaryConv) -> np.ndarray:
    """The ``conv=`` hook of reference.network.run, computed by TorchTernaryConv."""
    with torch.no_grad():
        return TorchTernaryConv(layer)(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def quantize(x: torch.Tensor, frac: int) -> torch.Tensor:
    """float -> int16 at 2**-frac: floor(x * 2**frac + 0.5), saturated."""
    v = torch.floor(x.to(torch.float64) * 2.0 ** frac + 0.5)
    return v.clamp(ACT_MIN, ACT_MAX).to(torch.int16)


def add(a: torch.Tensor, f_a: int, b: torch.Tensor, f_b: int, f_out: int, relu: bool) -> torch.Tensor:
    """Residual add: rescale each operand to f_out (exact left shift or rounding right shift)."""
    def rescale(q, f):
        q = q.to(torch.int64)
        if f_out >= f:
            return q << (f_out - f)
        return _round_shift(q, torch.tensor(f - f_out))
    v = rescale(a, f_a) + rescale(b, f_b)
    if relu:
        v = v.clamp_min(0)
    return v.clamp(ACT_MIN, ACT_MAX).to(torch.int16)
