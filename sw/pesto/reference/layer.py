"""One accelerated layer, bit-exact: int16 activations, ternary codes, int32 accumulation,
then the output stage of numerics.py."""

from __future__ import annotations

import numpy as np

from .. import numerics
from ..errors import ConfigError
from ..ir import TernaryConv


def conv_accumulate(x: np.ndarray, layer: TernaryConv) -> np.ndarray:
    """int32 accumulators (B, N, Ho, Wo) of the ternary convolution of int16 x (B, C, H, W)."""
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1] != layer.in_channels:
        raise ConfigError(
            f"layer {layer.name!r}: input must be (batch, {layer.in_channels}, H, W), got {x.shape}")
    kh, kw = layer.kernel
    s, p = layer.stride, layer.padding
    b, c, h, w = x.shape
    ho, wo = layer.out_hw(h, w)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (p, p), (p, p)))
    # float64 sums of int16 x ternary terms are exact below 2**53; fan-in <= 65535 keeps |acc| < 2**31.
    acc = np.zeros((b, layer.out_channels, ho, wo), dtype=np.float64)
    codes = layer.codes.astype(np.float64)
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, :, ky:ky + s * (ho - 1) + 1:s, kx:kx + s * (wo - 1) + 1:s]  # (B, C, Ho, Wo)
            acc += np.einsum("nc,bchw->bnhw", codes[:, :, ky, kx], patch, optimize=True)
    return acc.astype(np.int32)


def run_conv(x: np.ndarray, layer: TernaryConv) -> np.ndarray:
    """int16 outputs (B, N, Ho, Wo) of one accelerated layer. x may also be (C, H, W)."""
    x = np.asarray(x)
    single = x.ndim == 3
    if single:
        x = x[None]
    if x.dtype != np.int16:
        raise ConfigError(f"layer {layer.name!r}: input must be int16 fixed point, got {x.dtype}")
    y = numerics.output_stage(conv_accumulate(x, layer), layer.mult, layer.shift, layer.bias, layer.relu)
    return y[0] if single else y
