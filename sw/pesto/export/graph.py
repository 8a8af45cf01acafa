"""Capture a PyTorch model as a graph of the ops the exporter knows, with calibration statistics.

torch.fx traces the model with conv/linear/BN/ReLU/pooling/ShortcutA modules kept whole; an
interpreter then runs the calibration images through the traced graph and records, per node,
the largest |value| (for the fixed-point formats) and the output shape.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrize

from ..errors import ConfigError, UnsupportedLayerError

SUPPORTED = ("Conv2d, Linear, BatchNorm2d, ReLU (module or function), residual add, ShortcutA, "
             "MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, flatten/view/reshape, Dropout, Identity")

_MODULE_KINDS = (
    (nn.Conv2d, "conv"), (nn.Linear, "linear"), (nn.BatchNorm2d, "bn"), (nn.ReLU, "relu"),
    (nn.MaxPool2d, "maxpool"), (nn.AvgPool2d, "avgpool"), (nn.AdaptiveAvgPool2d, "avgpool"),
    (nn.Flatten, "flatten"), (nn.Dropout, "identity"), (nn.Identity, "identity"),
)
_FUNCTION_KINDS = {
    F.relu: "relu", torch.relu: "relu", operator.add: "add", operator.iadd: "add", torch.add: "add",
    torch.flatten: "flatten", F.max_pool2d: "maxpool", F.avg_pool2d: "avgpool",
    F.adaptive_avg_pool2d: "avgpool", F.dropout: "identity",
}
_METHOD_KINDS = {"relu": "relu", "relu_": "relu", "add": "add", "add_": "add", "view": "flatten",
                 "reshape": "flatten", "flatten": "flatten", "contiguous": "identity"}


def is_shortcut_a(m: nn.Module) -> bool:
    """An option-A shortcut: parameter-free, with stride / pad_before / pad_after (pesto.models.ShortcutA)."""
    return (all(hasattr(m, a) for a in ("stride", "pad_before", "pad_after"))
            and not any(True for _ in m.parameters()) and not isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)))


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if any(isinstance(m, cls) for cls, _ in _MODULE_KINDS) or is_shortcut_a(m):
            return True
        return super().is_leaf_module(m, qualname)


@dataclass
class OpNode:
    """One traced op: kind (conv, bn, relu, add, shortcut, ...), its fx node and module."""

    name: str
    kind: str
    fx_node: fx.Node
    module: nn.Module | None = None
    inputs: list[str] = field(default_factory=list)   # names of tensor-valued inputs
    max_abs: float = 0.0
    shape: tuple = ()                                   # output shape without the batch axis
    users: list[str] = field(default_factory=list)


def trace(model: nn.Module) -> fx.GraphModule:
    try:
        graph = _Tracer().trace(model)
    except Exception as e:  # fx raises many types for data-dependent control flow
        raise UnsupportedLayerError(
            f"{type(model).__name__}: torch.fx cannot trace this model ({type(e).__name__}: {e}); "
            f"the exporter needs a forward() without data-dependent control flow") from e
    return fx.GraphModule(model, graph)


class _Recorder(fx.Interpreter):
    def __init__(self, gm, stats):
        super().__init__(gm)
        self.stats = stats

    def run_node(self, n):
        out = super().run_node(n)
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            # one pass: min and max give |max|, and a NaN or inf anywhere propagates into them
            lo, hi = torch.aminmax(out.detach()) if out.numel() else (torch.zeros(()), torch.zeros(()))
            m = max(-float(lo), float(hi))
            if not math.isfinite(m):
                raise ConfigError(f"node {n.name!r} ({n.target}) produced NaN or inf on the calibration "
                                  f"images; the model's weights or the images are broken")
            prev = self.stats.get(n.name)
            self.stats[n.name] = (max(prev[0], m) if prev else m, tuple(out.shape[1:]))
        elif isinstance(out, torch.Tensor):
            self.stats[n.name] = (0.0, tuple(out.shape[1:]))
        return out


def capture(model: nn.Module, batches, progress=None) -> list[OpNode]:
    """Trace ``model`` and run it on ``batches`` (normalised float tensors); returns the op list."""
    gm = trace(model)
    stats: dict[str, tuple[float, tuple]] = {}
    rec = _Recorder(gm, stats)
    # cached(): each ternary weight is computed once for all batches, not once per forward
    with torch.no_grad(), parametrize.cached():
        for x in batches:
            rec.run(x)
            if progress is not None:
                progress.update(len(x))
    ops: list[OpNode] = []
    taken: set[str] = {"output"}
    by_fx: dict[fx.Node, OpNode] = {}
    for n in gm.graph.nodes:
        if n.op == "output":
            out = n.args[0]
            if not isinstance(out, fx.Node) or out not in by_fx:
                raise UnsupportedLayerError("the model must return a single tensor (the logits)")
            ops.append(OpNode("output", "output", n, inputs=[by_fx[out].name]))
            break
        if n.op != "placeholder" and n.name not in stats:
            continue  # a shape computation (x.size(0), ...): consumed by view/avg_pool, not exported
        kind, module = _classify(gm, n)
        tensor_inputs = [a for a in n.all_input_nodes if a in by_fx]
        op = OpNode(_unique(_op_name(n), taken), kind, n, module,
                    inputs=[by_fx[a].name for a in tensor_inputs])
        op.max_abs, op.shape = stats.get(n.name, (0.0, ()))
        by_fx[n] = op
        ops.append(op)
    names = {op.name: op for op in ops}
    for op in ops:
        for i in op.inputs:
            names[i].users.append(op.name)
    return ops


def _op_name(n: fx.Node) -> str:
    """Module ops keep their qualified name; functions get their enclosing module's (layer1.0.add)."""
    if n.op == "call_module":
        return str(n.target)
    if n.op == "placeholder":
        return "input"
    base = re.sub(r"_\d+$", "", n.name)
    scope = list((n.meta.get("nn_module_stack") or {}).keys())
    return f"{scope[-1]}.{base}" if scope else base


def _unique(name: str, taken: set[str]) -> str:
    out, k = name, 1
    while out in taken:
        out, k = f"{name}_{k}", k + 1
    taken.add(out)
    return out


def _classify(gm: fx.GraphModule, n: fx.Node) -> tuple[str, nn.Module | None]:
    if n.op == "placeholder":
        return "input", None
    if n.op == "call_module":
        m = gm.get_submodule(n.target)
        if is_shortcut_a(m):
            return "shortcut", m
        for cls, kind in _MODULE_KINDS:
            if isinstance(m, cls):
                return kind, m
        raise UnsupportedLayerError(
            f"layer {n.target!r} of type {type(m).__name__} is not supported by export-to-fpga; "
            f"supported: {SUPPORTED}")
    if n.op == "call_function" and n.target in _FUNCTION_KINDS:
        return _FUNCTION_KINDS[n.target], None
    if n.op == "call_method" and n.target in _METHOD_KINDS:
        return _METHOD_KINDS[n.target], None
    what = getattr(n.target, "__name__", str(n.target))
    raise UnsupportedLayerError(
        f"operation {n.name!r} ({n.op} {what}) is not supported by export-to-fpga; supported: {SUPPORTED}")
