"""Models quantized by other tools, adopted or refused before export (docs/interop.md).

* Brevitas (``brevitas.nn``): a QuantConv2d whose weight quantizer is ternary -- 2-bit, signed,
  narrow range (codes in {-1, 0, +1}) with one scale per tensor, e.g.
  ``SignedTernaryWeightPerTensorConst`` -- becomes a pesto ternary conv with Brevitas's own
  codes and scale (pesto's ternarization of codes * scale returns them unchanged: every |w|
  is the scale, above the 0.05 * max threshold, and their mean is the scale). A QuantConv2d of
  any other quantizer is refused with its bit width and the quantizer's name; a per-channel
  ternary scale too (pesto's layer scale alpha is one per layer). QuantLinear becomes a float
  Linear with its dequantized weight (the last layer runs on the host in float anyway);
  QuantReLU and QuantIdentity become ReLU / Identity with a warning: pesto's activations are
  int16, finer than the Brevitas activation quantizer's grid.
* torchao: a weight that is one of torchao's quantized tensor subclasses (int2/int4/int8
  affine layouts) is refused: pesto reads ternary codes, and an affine int2 grid
  {-2, -1, 0, 1} * scale + zero point is not one. The message says how to get a pesto model.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from ..errors import UnsupportedLayerError
from ..quant.ternary import Ternarize


class ForeignQuantizationWarning(UserWarning):
    """A quantized module from another tool was replaced by its pesto equivalent."""


def _tool(m: nn.Module) -> str:
    return type(m).__module__.split(".")[0]


def _quantizer_name(m: nn.Module) -> str:
    inj = getattr(getattr(m, "weight_quant", None), "quant_injector", None)
    return getattr(inj, "__name__", type(inj).__name__ if inj is not None else "its weight quantizer")


def _torchao_weight(m: nn.Module):
    w = getattr(m, "weight", None)
    if isinstance(w, torch.Tensor) and type(w).__module__.split(".")[0] == "torchao":
        return w
    data = getattr(w, "data", None)
    if isinstance(data, torch.Tensor) and type(data).__module__.split(".")[0] == "torchao":
        return data
    return None


def adopt(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """``model`` with Brevitas modules replaced by pesto's (see the module docstring) and torchao
    weights refused; returns (model, names of the adopted ternary layers). A model with nothing
    foreign in it comes back as is."""
    adopted, replaced, handled = [], [], []
    for name, m in list(model.named_modules()):
        if any(name.startswith(h + ".") for h in handled):
            continue                          # a quantizer proxy inside a layer handled already
        w = _torchao_weight(m)
        if w is not None:
            raise UnsupportedLayerError(
                f"layer {name!r} holds a torchao quantized weight ({type(w).__name__}): pesto cannot take "
                f"torchao's affine integer layouts (int2 is {{-2, -1, 0, 1}} x scale + zero point, not ternary). "
                f"Export the float model instead and ternarize it with pesto (pesto.train.fit(model, ...) or "
                f"`pesto train --init`), or call .dequantize() on the weights and export that float model")
        if not name or _tool(m) != "brevitas":
            continue
        handled.append(name)
        kind = type(m).__name__
        if kind == "QuantConv2d":
            new = _ternary_conv(name, m)
            adopted.append(name)
        elif kind == "QuantLinear":
            new = nn.Linear(m.in_features, m.out_features, m.bias is not None)
            with torch.no_grad():
                new.weight.copy_(m.quant_weight().value.detach())
                if m.bias is not None:
                    new.bias.copy_(m.bias.detach())
        elif kind in ("QuantReLU", "QuantIdentity"):
            new = nn.ReLU() if kind == "QuantReLU" else nn.Identity()
            replaced.append(f"{name} ({kind})")
        elif kind in ("QuantMaxPool2d",):
            new = nn.MaxPool2d(m.kernel_size, m.stride, m.padding)
        else:
            raise UnsupportedLayerError(f"layer {name!r} is a Brevitas {kind}, which pesto does not take; "
                                        f"supported: QuantConv2d with a ternary weight quantizer, QuantLinear, "
                                        f"QuantReLU, QuantIdentity, QuantMaxPool2d")
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, new)
    if replaced:
        warnings.warn(f"Brevitas activation quantizers replaced by their float forms: {', '.join(replaced)}; "
                      f"pesto quantizes activations to int16 itself (finer than their grid), so accuracy can "
                      f"differ slightly from the Brevitas model's", ForeignQuantizationWarning, stacklevel=3)
    return model, adopted


def _ternary_conv(name: str, m: nn.Module) -> nn.Conv2d:
    q = m.quant_weight()
    bits, codes = int(q.bit_width), q.int().detach()
    scale = q.scale.detach()
    if not (bits == 2 and bool(q.signed) and codes.abs().max() <= 1):
        raise UnsupportedLayerError(
            f"layer {name!r} (Brevitas QuantConv2d) has {bits}-bit {'signed' if q.signed else 'unsigned'} weights "
            f"from {_quantizer_name(m)}, which is not ternary; pesto's engine takes ternary weights only: use a "
            f"ternary quantizer (brevitas.quant.ternary.SignedTernaryWeightPerTensorConst) or export the float "
            f"model and ternarize it with pesto")
    if scale.numel() != 1 and not torch.all(scale == scale.reshape(-1)[0]):
        raise UnsupportedLayerError(
            f"layer {name!r} (Brevitas QuantConv2d, {_quantizer_name(m)}) has one ternary scale per output "
            f"channel; pesto's ternary layers have one scale per layer: use a per-tensor ternary quantizer "
            f"(e.g. SignedTernaryWeightPerTensorConst)")
    s = float(scale.reshape(-1)[0])
    if s <= 0:
        raise UnsupportedLayerError(f"layer {name!r} (Brevitas QuantConv2d): weight scale {s} is not positive")
    conv = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                     m.bias is not None, m.padding_mode)
    with torch.no_grad():
        conv.weight.copy_(codes.to(conv.weight.dtype) * s)
        if m.bias is not None:
            conv.bias.copy_(m.bias.detach())
    cg = min(16, m.in_channels)
    parametrize.register_parametrization(conv, "weight", Ternarize(cg))
    return conv
