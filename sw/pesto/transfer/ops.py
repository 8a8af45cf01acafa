"""The ops a transfer network runs, each saving for backward only what its backward needs.

Every op of a TransferNet forward -- the backbone's and the Rep-Net's -- goes through the functions
here, so the memory a method needs follows from what it trains, not from framework habits:

* ``conv(x, m)`` / ``bn(x, m)``: a frozen conv (its weights, ternary or not, do not train) saves
  only its weight, since dL/dx = conv_transpose(dL/dy, W) needs no activation; a frozen BN in
  inference mode is the affine map x * scale + shift and saves only ``scale``. Trainable layers
  run as ordinary torch modules (which save their input: dL/dW needs it).
* ``relu(x)``: saves the sign of its output as a bit mask, 1 bit per element (torch's ReLU
  keeps the whole float output).
* ``maxpool(x, m)``: saves the winning tap of each window as one byte (torch keeps the input and
  int64 indices).
* ``global_pool(x)``: a mean, which saves nothing.
* ``fake_quant(x, frac)``: the saturating int16 quantization of the connectors (numerics.quantize,
  straight-through inside the range, zero gradient where it saturates), a bit mask saved.

Frozen weights (a ternary conv's alpha * codes, a frozen BN's scale and shift) are computed once
and cached until the tensors they come from change (``frozen_storages`` lists them, so the memory
accounting files them under weights, not activations).

``table16()`` counts, while active, the training memory of Table 16 (dissertation, chapter 4)
analytically: trainable parameters p, and activations a = n*c_in*h*w for every Conv/FC/BN layer
whose parameters train and every ReLU on the gradient path.
"""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..numerics import ACT_MAX, ACT_MIN

# -- bit masks ------------------------------------------------------------------------------
_BIT_WEIGHTS = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8)


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """bool tensor -> uint8, 8 elements per byte (LSB first), zero padded."""
    flat = mask.reshape(-1)
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    return (flat.view(-1, 8).to(torch.uint8) * _BIT_WEIGHTS.to(mask.device)).sum(1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, shape) -> torch.Tensor:
    """Inverse of ``pack_bits``: a bool tensor of ``shape``."""
    shifts = torch.arange(8, dtype=torch.uint8, device=packed.device)
    bits = (packed.unsqueeze(1) >> shifts) & 1
    return bits.reshape(-1)[:torch.Size(shape).numel()].view(shape).bool()


# -- frozen weights -------------------------------------------------------------------------
_CACHE: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def frozen(m: nn.Module) -> bool:
    """No parameter of ``m`` trains."""
    return not any(p.requires_grad for p in m.parameters())


def _cached(m: nn.Module, sources: list[torch.Tensor], make):
    key = tuple((t.data_ptr(), t._version) for t in sources)
    hit = _CACHE.get(m)
    if hit is None or hit[0] != key:
        with torch.no_grad():
            hit = (key, make())
        _CACHE[m] = hit
    return hit[1]


def frozen_weight(m: nn.Module) -> torch.Tensor:
    """The weight a frozen conv/linear computes with (alpha * codes for a ternary layer)."""
    from ..quant import is_ternary, latent_weight
    if not is_ternary(m):
        return m.weight
    return _cached(m, [latent_weight(m)], lambda: m.weight.detach().clone())


def frozen_affine(m: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of a BN in inference mode, shaped (1, C, 1, 1)."""
    parts = [t for t in (m.running_mean, m.running_var, m.weight, m.bias) if t is not None]

    def make():
        scale = torch.rsqrt(m.running_var + m.eps)
        if m.weight is not None:
            scale = scale * m.weight
        shift = -m.running_mean * scale
        if m.bias is not None:
            shift = shift + m.bias
        return scale.view(1, -1, 1, 1).detach(), shift.view(1, -1, 1, 1).detach()
    return _cached(m, parts, make)


def frozen_storages() -> set[int]:
    """data_ptr of every cached frozen tensor (weights, not activations, for the accounting)."""
    out = set()
    for _, value in list(_CACHE.items()):
        for t in (value[1] if isinstance(value[1], tuple) else (value[1],)):
            out.add(t.untyped_storage().data_ptr())
    return out


# -- autograd functions ---------------------------------------------------------------------
class _FrozenConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        ctx.save_for_backward(weight)
        ctx.conf = (x.shape, stride, padding, dilation, groups)
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        shape, stride, padding, dilation, groups = ctx.conf
        gx = torch.nn.grad.conv2d_input(shape, weight, grad, stride, padding, dilation, groups)
        return gx, None, None, None, None, None, None


class _ReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.clamp_min(0)
        ctx.save_for_backward(pack_bits(y > 0))
        ctx.shape = y.shape
        return y

    @staticmethod
    def backward(ctx, grad):
        (bits,) = ctx.saved_tensors
        return grad * unpack_bits(bits, ctx.shape)


class _FakeQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, frac):
        v = torch.floor(x * 2.0 ** frac + 0.5)
        inside = (v >= ACT_MIN) & (v <= ACT_MAX)
        ctx.save_for_backward(pack_bits(inside))
        ctx.shape = x.shape
        return v.clamp(ACT_MIN, ACT_MAX) * 2.0 ** -frac

    @staticmethod
    def backward(ctx, grad):
        (bits,) = ctx.saved_tensors
        return grad * unpack_bits(bits, ctx.shape), None


class _MaxPool(torch.autograd.Function):
    """Max pooling that keeps, per output, the winning tap of its window in one byte."""

    @staticmethod
    def forward(ctx, x, k, s, p):
        y, idx = F.max_pool2d(x, k, s, p, return_indices=True)
        h, w = x.shape[-2:]
        ho, wo = y.shape[-2:]
        oy = torch.arange(ho, device=x.device).view(-1, 1) * s - p
        ox = torch.arange(wo, device=x.device).view(1, -1) * s - p
        tap = (idx // w - oy) * k + (idx % w - ox)
        ctx.save_for_backward(tap.to(torch.uint8))
        ctx.conf = (x.shape, k, s, p)
        return y

    @staticmethod
    def backward(ctx, grad):
        (tap,) = ctx.saved_tensors
        shape, k, s, p = ctx.conf
        h, w = shape[-2:]
        ho, wo = tap.shape[-2:]
        t = tap.long()
        oy = torch.arange(ho, device=grad.device).view(-1, 1) * s - p
        ox = torch.arange(wo, device=grad.device).view(1, -1) * s - p
        idx = (oy + t // k) * w + (ox + t % k)
        gx = grad.new_zeros(shape[0], shape[1], h * w)
        gx.scatter_add_(2, idx.flatten(2), grad.flatten(2))
        return gx.view(shape), None, None, None


# -- the table 16 counter -------------------------------------------------------------------
@dataclass
class Table16:
    """Analytic training memory of table 16: elements of trainable parameters and of activations."""

    params: int = 0
    activations: int = 0
    rows: list = field(default_factory=list)   # (layer kind, activation elements, trainable params)

    def add(self, kind: str, x: torch.Tensor, m: nn.Module | None = None) -> None:
        p = sum(t.numel() for t in m.parameters() if t.requires_grad) if m is not None else 0
        on_path = p > 0 or (kind == "relu" and x.requires_grad)
        if on_path:
            a = x.numel()
            self.params += p
            self.activations += a
            self.rows.append((kind, a, p))

    def bytes(self, itemsize: int = 4) -> dict:
        return {"params": self.params * itemsize, "activations": self.activations * itemsize}


_COUNTER: list[Table16] = []


@contextlib.contextmanager
def table16():
    """Count table 16's analytic memory of the forward passes run inside the block."""
    t = Table16()
    _COUNTER.append(t)
    try:
        yield t
    finally:
        _COUNTER.remove(t)


def _count(kind, x, m=None):
    if _COUNTER:
        _COUNTER[-1].add(kind, x, m)


# -- the ops --------------------------------------------------------------------------------
def conv(x: torch.Tensor, m: nn.Conv2d) -> torch.Tensor:
    _count("conv", x, m)
    if not frozen(m):
        return m(x)
    if m.padding_mode != "zeros":
        return m(x)
    return _FrozenConv.apply(x, frozen_weight(m), m.bias, m.stride, m.padding, m.dilation, m.groups)


def bn(x: torch.Tensor, m: nn.BatchNorm2d) -> torch.Tensor:
    _count("bn", x, m)
    if m.training or not frozen(m) or m.running_var is None:
        return m(x)
    scale, shift = frozen_affine(m)
    return x * scale + shift


def linear(x: torch.Tensor, m: nn.Linear) -> torch.Tensor:
    _count("fc", x, m)
    return m(x) if not frozen(m) else F.linear(x, frozen_weight(m), m.bias)


def relu(x: torch.Tensor) -> torch.Tensor:
    _count("relu", x)
    return _ReLU.apply(x) if x.requires_grad else x.clamp_min(0)


def maxpool(x: torch.Tensor, m: nn.MaxPool2d) -> torch.Tensor:
    k, s, p = (v if isinstance(v, int) else v[0] for v in (m.kernel_size, m.stride or m.kernel_size, m.padding))
    if not x.requires_grad or m.dilation not in (1, (1, 1)) or m.ceil_mode or k * k > 256:
        return m(x)
    return _MaxPool.apply(x, int(k), int(s), int(p))


def global_pool(x: torch.Tensor) -> torch.Tensor:
    """Global average pooling to (B, C, 1, 1)."""
    return x.mean(dim=(2, 3), keepdim=True)


def fake_quant(x: torch.Tensor, frac: int) -> torch.Tensor:
    """numerics.quantize then dequantize (int16 at 2**-frac, saturating), straight-through inside."""
    return _FakeQuant.apply(x, int(frac))
