"""The fixed-point contract, defined once (docs/numerics.md explains each rule).

Shared bit for bit by the integer reference, the PyTorch fake-quant forward, the HLS C++
and the RTL:

* Activations: signed 16-bit, per-tensor power-of-two scale: real = q * 2**-frac_bits.
* Weights: ternary codes in {-1, 0, +1}; the layer scale alpha and the folded batch norm
  live in the per-output-channel output stage, applied once per output.
* Accumulation: signed 32-bit, never overflows for C*Kh*Kw <= MAX_FAN_IN (checked at export).
* Output stage, per output channel n:
      v = acc * mult[n] + bias[n]                  (exact, fits in 49 bits)
      v = (v + 2**(shift[n]-1)) >> shift[n]        (arithmetic shift: round half up; no-op at shift 0)
      v = max(v, 0)                                (only if the layer has ReLU)
      y = clamp(v, -32768, 32767)                  (saturate to int16)
  mult is int16, shift is 0..SHIFT_MAX, bias is a signed BIAS_BITS integer.
* Quantizing a float tensor: q = clamp(floor(x * 2**f + 0.5), -32768, 32767).
* Rescaling between formats and the residual add: see ``rescale`` and ``add``.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError

ACT_BITS = 16
ACT_MIN = -(1 << (ACT_BITS - 1))
ACT_MAX = (1 << (ACT_BITS - 1)) - 1
ACC_BITS = 32
MULT_BITS = 16
MULT_MIN = -(1 << (MULT_BITS - 1))
MULT_MAX = (1 << (MULT_BITS - 1)) - 1
SHIFT_BITS = 6
SHIFT_MAX = 47
BIAS_BITS = 48
BIAS_MIN = -(1 << (BIAS_BITS - 1))
BIAS_MAX = (1 << (BIAS_BITS - 1)) - 1
# |acc| <= fan_in * 2**15 must stay below 2**31.
MAX_FAN_IN = (1 << (ACC_BITS - 1)) // (1 << (ACT_BITS - 1)) - 1   # 65535
FRAC_MIN, FRAC_MAX = -16, 30


def saturate(v) -> np.ndarray:
    """Clamp an integer array to int16."""
    return np.clip(v, ACT_MIN, ACT_MAX).astype(np.int16)


def round_shift(v, shift) -> np.ndarray:
    """Arithmetic right shift with round-half-up: floor((v + 2**(s-1)) / 2**s); s=0 is identity.

    ``shift`` may be a scalar or an array broadcastable against ``v``.
    """
    v = np.asarray(v, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
    return np.right_shift(v + half, s)


def check_fan_in(in_channels: int, kh: int, kw: int, where: str = "layer") -> None:
    fan_in = in_channels * kh * kw
    if fan_in > MAX_FAN_IN:
        raise ConfigError(
            f"{where}: fan-in C*Kh*Kw = {fan_in} exceeds {MAX_FAN_IN}; the 32-bit accumulator "
            f"could overflow. Split the layer's input channels.")


def output_stage(acc, mult, shift, bias, relu: bool, channel_axis: int = -3) -> np.ndarray:
    """Apply the per-output-channel integer output stage to int32 accumulators.

    acc: integer array with the output channel on ``channel_axis`` (default: (..., N, H, W)).
    mult, shift, bias: integer arrays of shape (N,).
    """
    acc = np.asarray(acc, dtype=np.int64)
    shape = [1] * acc.ndim
    shape[channel_axis] = -1
    m = np.asarray(mult, dtype=np.int64).reshape(shape)
    s = np.asarray(shift, dtype=np.int64).reshape(shape)
    b = np.asarray(bias, dtype=np.int64).reshape(shape)
    v = round_shift(acc * m + b, s)
    if relu:
        v = np.maximum(v, 0)
    return saturate(v)


def quantize(x, frac_bits: int) -> np.ndarray:
    """float -> int16 with scale 2**-frac_bits: round half up, saturate."""
    x = np.asarray(x, dtype=np.float64)
    return saturate(np.floor(x * 2.0 ** frac_bits + 0.5))


def dequantize(q, frac_bits: int) -> np.ndarray:
    return np.asarray(q, dtype=np.float32) * np.float32(2.0 ** -frac_bits)


def rescale(q, f_from: int, f_to: int) -> np.ndarray:
    """Move int16 values from 2**-f_from to 2**-f_to: exact left shift or rounding right shift.

    Returns int64 (unsaturated) so callers can add before saturating.
    """
    q = np.asarray(q, dtype=np.int64)
    if f_to >= f_from:
        return np.left_shift(q, f_to - f_from)
    return round_shift(q, f_from - f_to)


def add(a, f_a: int, b, f_b: int, f_out: int, relu: bool) -> np.ndarray:
    """Residual add of two int16 tensors in their own formats, result in f_out: each operand is
    rescaled to f_out (``rescale``), summed exactly, optionally ReLU'd, then saturated."""
    v = rescale(a, f_a, f_out) + rescale(b, f_b, f_out)
    if relu:
        v = np.maximum(v, 0)
    return saturate(v)


def choose_frac_bits(max_abs: float) -> int:
    """Largest f with max_abs * 2**f <= ACT_MAX (the most precision that does not saturate)."""
    if not math.isfinite(max_abs):
        raise ConfigError(f"activation range is not finite ({max_abs}); check the model for NaN/inf")
    if max_abs <= 0:
        return FRAC_MAX
    f = math.floor(math.log2(ACT_MAX / max_abs))
    return int(min(max(f, FRAC_MIN), FRAC_MAX))


def fold_output_stage(scale, bias, f_in: int, f_out: int):
    """Turn a real per-channel affine y = scale * acc * 2**-f_in + bias into (mult, shift, bias)
    integers that produce y in format f_out (before ReLU and saturation).

    mult is normalised into [2**14, 2**15) in magnitude where the shift range allows, which keeps
    15 significant bits of every channel's scale.
    """
    scale = np.asarray(scale, dtype=np.float64)
    bias = np.asarray(bias, dtype=np.float64)
    if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(bias))):
        raise ConfigError("output stage: scale or bias is NaN or infinite; the model's weights are broken")
    k = scale * 2.0 ** (f_out - f_in)
    mult = np.zeros(k.shape, dtype=np.int64)
    shift = np.zeros(k.shape, dtype=np.int64)
    for i, ki in enumerate(k):
        if ki == 0:
            continue
        s = 14 - math.floor(math.log2(abs(ki)))
        s = min(max(s, 0), SHIFT_MAX)
        m = round(ki * 2.0 ** s)
        if m > MULT_MAX or m < MULT_MIN:
            if s == 0:
                raise ConfigError(
                    f"output stage: channel {i} gain {ki:.3g} is too large for a 16-bit multiplier; "
                    f"lower the output frac bits")
            s -= 1
            m = round(ki * 2.0 ** s)
        mult[i], shift[i] = m, s
    b = np.round(bias * 2.0 ** (f_out + shift.astype(np.float64)))
    if np.any(b > BIAS_MAX) or np.any(b < BIAS_MIN):
        raise ConfigError("output stage: a bias does not fit in 48 bits; lower the output frac bits")
    return mult.astype(np.int64), shift.astype(np.int64), b.astype(np.int64)
