"""Where the activation connectors go: found from the backbone's graph, never from layer names.

The graph is the exporter's own capture (``pesto.export.graph.capture``: torch.fx trace + one
forward for the shapes). Design intuition 3 of section 4.3.4 places one connector at every
down-sampling point of the backbone -- a stride-2 block or a pooling layer -- on the output of
that block. On the graph that is:

* a *cut point*: an op every path from the input to the logits passes through (the output of a
  residual block, never a conv inside one, whose shortcut bypasses it);
* whose spatial size is smaller than the previous cut point's (stride-2 conv, pooling);
* moved past the BN / ReLU / flatten that follow it alone, so the connector sees the block's
  final value (the one the artifact holds, since the exporter fuses those into the op).

The last connector is always the classifier's input (the head): with designs that do not feed the
backbone, it is where the Rep-Net's feature reaches the logits. ``every_block`` puts a connector
at every cut point instead (the "dual connection at every block" row of table 17).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..errors import ConfigError

_PASS_THROUGH = ("bn", "relu", "identity", "flatten")


@dataclass(frozen=True)
class Connector:
    """One activation connector: the backbone value it reprograms and the shape it has."""

    op: str                 # the op's name in pesto.export.graph.capture (the exporter's names)
    node: str               # the fx node's name in the traced backbone
    shape: tuple            # the value's shape without the batch axis: (C, H, W) or (features,)
    grid: tuple             # the (C, H, W) the Rep-Net block produces (flattened when shape is a vector)
    kind: str               # "down": a down-sampling point; "block": every_block extra; "head": classifier input

    @property
    def flatten(self) -> bool:
        return len(self.shape) == 1

    def describe(self) -> str:
        return f"{self.op} ({self.kind}, {'x'.join(map(str, self.shape))})"


def backbone_ops(model: nn.Module, input_shape):
    """The exporter's op list of ``model`` (kinds, shapes, users), from one forward of zeros."""
    from ..export import graph
    was = model.training
    model.eval()
    try:
        return graph.capture(model, [torch.zeros(2, *input_shape)])
    finally:
        model.train(was)


def find_connectors(model: nn.Module, input_shape, every_block: bool = False,
                    ops=None) -> tuple[list[Connector], str]:
    """(connectors in execution order, fx node name of the classifier) of a backbone
    (``ops``: its ``backbone_ops`` if already made)."""
    ops = ops if ops is not None else backbone_ops(model, input_shape)
    by_name = {op.name: op for op in ops}
    pos = {op.name: i for i, op in enumerate(ops)}
    out = ops[-1]
    classifier = by_name[out.inputs[0]]
    if classifier.kind != "linear":
        raise ConfigError(f"the backbone must end in a linear classifier (nn.Linear) that the transfer "
                          f"replaces; its output comes from a {classifier.kind} op ({classifier.name!r})")
    head = by_name[classifier.inputs[0]]

    # cut points: no edge from an earlier op lands after them
    cuts, reach = [], 0
    for i, op in enumerate(ops):
        if op.kind not in ("input", "output") and reach <= i and pos[op.name] < pos[classifier.name]:
            cuts.append(op)
        reach = max([reach] + [pos[u] for u in op.users])

    def settle(op):
        while len(op.users) == 1 and by_name[op.users[0]].kind in _PASS_THROUGH and op is not head:
            op = by_name[op.users[0]]
        return op

    res = tuple(ops[0].shape[1:])
    points: list[tuple] = []   # (op, kind)
    for op in cuts:
        if len(op.shape) == 3:
            hw = tuple(op.shape[1:])
            if hw[0] < res[0] or hw[1] < res[1]:
                points.append((settle(op), "down"))
                res = hw
                continue
        if every_block:
            points.append((settle(op), "block"))
    if not any(kind == "down" for _, kind in points):
        raise ConfigError("the backbone has no down-sampling point (a stride-2 block or a pooling layer "
                          "before the classifier), so Rep-Net has nowhere to connect; use a backbone that "
                          "reduces the resolution (every pesto zoo model does)")
    seen, chosen = set(), []
    for op, kind in points:
        if op is head:
            continue
        if op.name not in seen:
            seen.add(op.name)
            chosen.append((op, kind))
    chosen.append((head, "head"))
    conns = []
    for op, kind in chosen:
        if len(op.shape) == 3:
            grid = tuple(op.shape)
        elif len(op.shape) == 1 and op.kind == "flatten" and len(by_name[op.inputs[0]].shape) == 3:
            grid = tuple(by_name[op.inputs[0]].shape)
        else:
            raise ConfigError(f"connector at {op.name!r}: shape {op.shape} is neither a feature map nor the "
                              f"flattened output of one; Rep-Net cannot produce it")
        conns.append(Connector(op.name, op.fx_node.name, tuple(op.shape), grid, kind))
    return conns, classifier.fx_node.name


def block_stride(src: tuple, dst: tuple, where: str) -> int | None:
    """Stride of the 3x3 (padding 1) conv that maps grid ``src`` to ``dst``; None: global pooling."""
    (_, hi, wi), (_, ho, wo) = src, dst
    if (ho, wo) == (1, 1) and (hi, wi) != (1, 1):
        return None
    s = max(hi // ho, 1)
    if (hi - 1) // s + 1 != ho or (wi - 1) // s + 1 != wo:
        raise ConfigError(f"{where}: no 3x3 stride-s conv maps {hi}x{wi} to {ho}x{wo}; the backbone's "
                          f"down-sampling is not a stride-2 step Rep-Net can follow")
    return s
