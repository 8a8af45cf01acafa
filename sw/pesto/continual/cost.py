"""What a training step costs: activations saved for backward, backward FLOPs, parameter bytes.

* **Saved activations** -- every tensor autograd saves during the forward pass, caught with
  ``torch.autograd.graph.saved_tensors_hooks``, counted once per storage (a ReLU output that is
  also the next convolution's saved input is one tensor), parameters excluded (they are counted as
  parameters). This is what a step holds in memory between forward and backward.
* **Backward FLOPs** -- counted from shapes, per convolution and linear layer and per call:
  forward FLOPs F = 2 * N * (output elements per sample) * (Cin / groups) * kh * kw (linear:
  2 * N * in * out); backward = F for the input gradient, if the layer's input requires grad, plus
  F for the weight gradient, if its weight requires grad. A frozen layer drops the weight term; a
  layer in a frozen prefix (its input needs no grad) drops both; the first layer never has the
  input term. BatchNorm, ReLU, pooling and the loss are not counted (torch's FlopCounterMode does
  not count them either; the test suite checks this rule against it).
* **Memory** (the seed's definition): parameter bytes + saved activation bytes + replay-buffer bytes.

``StepMeter`` does both counts for one step; it adds one forward hook per layer and one Python
call per saved tensor, the same for every method it measures.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn as nn


def forward_flops(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        return 2 * out.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, nn.Linear):
        return 2 * out.numel() * module.in_features
    return 0


def backward_flops(fwd: int, input_needs_grad: bool, weight_trainable: bool) -> int:
    """The rule: grad-input term if the input needs a gradient, grad-weight term if trainable."""
    return fwd * (int(input_needs_grad) + int(weight_trainable))


def param_bytes(module: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


class StepMeter:
    """Counts saved-for-backward bytes and backward FLOPs of the forward passes inside ``step()``."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        self.saved_bytes = 0
        self.bwd_flops = 0
        self.fwd_flops = 0
        self._storages: dict[int, int] = {}
        self._params: set[int] = set()

    def _layer_hook(self, m, inp, out):
        f = forward_flops(m, inp[0], out)
        self.fwd_flops += f
        if torch.is_grad_enabled():
            self.bwd_flops += backward_flops(f, inp[0].requires_grad, m.weight.requires_grad)

    def _pack(self, t: torch.Tensor):
        try:
            st = t.untyped_storage()
            ptr, nbytes = st.data_ptr(), st.nbytes()
        except (RuntimeError, NotImplementedError):   # tensors without storage (e.g. sparse)
            ptr, nbytes = id(t), t.numel() * t.element_size()
        if ptr not in self._params:
            self._storages[ptr] = max(self._storages.get(ptr, 0), nbytes)
        return t

    @contextmanager
    def step(self):
        """Wrap one training step's forward (the backward may run inside or after it)."""
        self._storages = {}
        self._params = {p.untyped_storage().data_ptr() for p in self.model.parameters()}
        self.bwd_flops = self.fwd_flops = 0
        handles = [m.register_forward_hook(self._layer_hook) for m in self.layers]
        try:
            with torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t):
                yield self
        finally:
            for h in handles:
                h.remove()
            self.saved_bytes = sum(self._storages.values())
