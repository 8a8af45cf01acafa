"""Layer freezing that really saves work: the layers of a backbone, and freezing them in place.

A *layer* (the unit PTLF freezes, counted by the freezing ratio) is one convolution of the backbone
together with the BatchNorm that follows it, in forward order (ResNet-20: 19 layers, ResNet-18: 20
with its three projection shortcuts). ``freeze(layer)`` makes it a fixed function:

* its parameters stop requiring gradients, so autograd computes no weight gradient (no grad-weight
  convolution) and the optimizer skips them;
* the convolution runs through ``FrozenConv2d``, an autograd function that saves only the weight
  it needs for the input gradient, not the input activation a trainable convolution keeps;
* the BatchNorm normalises with its running statistics (a per-channel affine x * s + t with constant
  s, t; autograd saves s, not x) and stops updating them.

Where every layer up to some point is frozen, the activations reaching it do not require grad, so
autograd records nothing there at all: a frozen prefix keeps no graph and does no backward work.
Parameter tensors and the module tree are untouched (state dicts, checkpoints, DDP and torch.fx see
the same model); only the instances' ``forward`` is swapped, and ``unfreeze`` swaps it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MethodType

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Layer:
    index: int
    name: str               # qualified name of the convolution inside the backbone
    conv: nn.Conv2d
    bn: nn.BatchNorm2d | None

    @property
    def frozen(self) -> bool:
        return "forward" in self.conv.__dict__

    def parameters(self):
        yield from self.conv.parameters()
        if self.bn is not None:
            yield from self.bn.parameters()


def find_layers(backbone: nn.Module, example: torch.Tensor) -> list[Layer]:
    """The backbone's convolutions in the order its forward calls them, each with the BatchNorm that
    consumes its output (found by running ``example`` once and matching output tensors)."""
    names = {m: n for n, m in backbone.named_modules()}
    calls: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []

    def hook(m, inp, out):
        calls.append((m, inp[0], out))

    handles = [m.register_forward_hook(hook) for m in backbone.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    was = backbone.training
    try:
        backbone.eval()
        with torch.no_grad():
            backbone(example)
    finally:
        backbone.train(was)
        for h in handles:
            h.remove()
    layers, seen = [], set()
    for i, (m, _, out) in enumerate(calls):
        if isinstance(m, nn.Conv2d) and m not in seen:
            seen.add(m)
            bn = next((b for b, x, _ in calls[i + 1:] if isinstance(b, nn.BatchNorm2d) and x is out), None)
            layers.append(Layer(len(layers), names[m], m, bn))
    return layers


class FrozenConv2d(torch.autograd.Function):
    """conv2d whose weight is constant: backward gives the input gradient only, from the weight."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        ctx.save_for_backward(weight)
        ctx.conf = (tuple(x.shape), stride, padding, dilation, groups)
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad_out):
        (weight,) = ctx.saved_tensors
        shape, stride, padding, dilation, groups = ctx.conf
        gx = None
        if ctx.needs_input_grad[0]:
            gx = torch.nn.grad.conv2d_input(shape, weight, grad_out, stride, padding, dilation, groups)
        return gx, None, None, None, None, None, None


def _frozen_conv_forward(self: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    if not x.requires_grad:  # inside a frozen prefix: plain conv, autograd records nothing
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
    return FrozenConv2d.apply(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


def _frozen_bn_forward(self: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        s = torch.rsqrt(self.running_var + self.eps)
        if self.weight is not None:
            s = s * self.weight
        t = -self.running_mean * s
        if self.bias is not None:
            t = t + self.bias
    return x * s.view(1, -1, 1, 1) + t.view(1, -1, 1, 1)


def freeze(layer: Layer) -> None:
    if layer.frozen:
        return
    if layer.conv.padding_mode != "zeros" or isinstance(layer.conv.padding, str):
        raise NotImplementedError(f"{layer.name}: freezing supports zero padding given as numbers only")
    for p in layer.parameters():
        p.requires_grad_(False)
        p.grad = None
    layer.conv.forward = MethodType(_frozen_conv_forward, layer.conv)
    if layer.bn is not None:
        layer.bn.forward = MethodType(_frozen_bn_forward, layer.bn)


def unfreeze(layer: Layer) -> None:
    for p in layer.parameters():
        p.requires_grad_(True)
    layer.conv.__dict__.pop("forward", None)
    if layer.bn is not None:
        layer.bn.__dict__.pop("forward", None)


def frozen_indices(layers: list[Layer]) -> list[int]:
    return [l.index for l in layers if l.frozen]
