"""Rep-Net (section 4.3) and the baselines, as one network type: ``TransferNet``.

    net = TransferNet(backbone, num_classes=5, method="repnet", design="dual")
    net.set_formats(fracs)            # the backbone artifact's int16 formats at the connectors

The backbone runs op by op from its torch.fx graph (``pesto.export.graph.trace``) through
``pesto.transfer.ops``; at each connector (``connectors.find_connectors``) the Rep-Net block of
that connector turns the previous Rep-Net feature p into one of the backbone value's shape and
the connector adds them (eq 4.6): s = x + p. Which network receives s is the design (table 17):

    design     to backbone   to Rep-Net   where
    none (a)       -             -        only the head (the classifier's input) adds p
    down (b)       s             p
    up (c)         x             s
    dual (d)       s             s        the proposed Rep-Net (default)
    dual-all       s             s        at every block, not only the down-sampling points

The head connector always passes s to the classifier. Where the backbone receives s inside the
accelerated part, it receives it quantized to the backbone's own int16 format at that point
(``ops.fake_quant``, saturating), exactly what the deployed connector does; with a frozen backbone
every int16 value of the backbone artifact is rounded and saturated so too (``set_formats``).

Methods (what trains; every one trains a new classifier):

    repnet           the Rep-Net blocks                   backbone frozen, BN in inference mode
    last             nothing else                          backbone frozen
    full             every backbone parameter              BN in training mode
    bias-bn          the backbone's BN affine and biases   BN in training mode
    input-reprogram  an additive input p (eq 4.2-4.3)      backbone frozen
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from . import ops
from .connectors import Connector, block_stride, find_connectors


@dataclass(frozen=True)
class Design:
    letter: str
    to_backbone: bool
    to_repnet: bool
    every_block: bool
    help: str


DESIGNS = {
    "none": Design("a", False, False, False, "no connection: the Rep-Net's feature joins only before the classifier"),
    "down": Design("b", True, False, False, "down connection: x + p goes to the backbone, the Rep-Net keeps p"),
    "up": Design("c", False, True, False, "up connection: x + p goes to the Rep-Net, the backbone keeps x"),
    "dual": Design("d", True, True, False, "dual connection (eq 4.6): x + p goes to both (the proposed Rep-Net)"),
    "dual-all": Design("e", True, True, True, "dual connection at every block, not only at the down-sampling points"),
}


@dataclass(frozen=True)
class Method:
    trains: str            # "repnet", "classifier", "all", "bias-bn", "reprogram"
    bn_train: bool         # the backbone's BN in training mode (batch statistics, updated running stats)
    help: str


METHODS = {
    "repnet": Method("repnet", False, "Rep-Net side network + new classifier; backbone frozen (section 4.3)"),
    "last": Method("classifier", False, "fine-tune the last layer only (a new classifier on frozen features)"),
    "full": Method("all", True, "fine-tune every parameter of the backbone + a new classifier"),
    "bias-bn": Method("bias-bn", True, "fine-tune the backbone's biases and BatchNorm only + a new classifier"),
    "input-reprogram": Method("reprogram", False, "input reprogramming x + p (eq 4.2-4.3) + a retrained classifier"),
}


def design_of(name: str) -> Design:
    if name not in DESIGNS:
        raise ConfigError(f"unknown design {name!r}; choose one of {', '.join(DESIGNS)} (table 17: "
                          + "; ".join(f"{k} = {v.letter}" for k, v in DESIGNS.items()) + ")")
    return DESIGNS[name]


def method_of(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]


class RepBlock(nn.Module):
    """One Rep-Net block: conv3x3 (stride s) -> BN -> ReLU -> conv1x1 -> BN [-> global average pool].

    The last BN's scale starts at zero, so the block outputs p = 0 until it has learnt something
    and the transfer starts from the backbone's own features.
    """

    def __init__(self, c_in: int, c_out: int, mid: int, stride: int | None, flatten: bool):
        super().__init__()
        self.pool = stride is None
        self.flatten = flatten
        self.conv1 = nn.Conv2d(c_in, mid, 3, stride or 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, c_out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        nn.init.kaiming_normal_(self.conv2.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = ops.relu(ops.bn(ops.conv(x, self.conv1), self.bn1))
        y = ops.bn(ops.conv(y, self.conv2), self.bn2)
        if self.pool:
            y = ops.global_pool(y)
        return y.flatten(1) if self.flatten else y


class RepNet(nn.Module):
    """The side network: one RepBlock per connector, from the input image to the head."""

    def __init__(self, input_shape, connectors: list[Connector], width: float = 0.5):
        super().__init__()
        if not 0 < width <= 4:
            raise ConfigError(f"Rep-Net width must be in (0, 4] (mid channels = width x the connector's "
                              f"channels), got {width}")
        blocks, src = [], tuple(input_shape)
        for c in connectors:
            stride = block_stride(src, c.grid, f"Rep-Net block for {c.op}")
            mid = max(8, int(round(width * c.grid[0])))
            blocks.append(RepBlock(src[0], c.grid[0], mid, stride, c.flatten))
            src = c.grid
        self.blocks = nn.ModuleList(blocks)


class _Run(fx.Interpreter):
    """One forward of a TransferNet: the backbone graph, op by op, with the connectors applied."""

    def __init__(self, net: "TransferNet"):
        super().__init__(net._gm)
        self.net = net
        self.p = None

    def run_node(self, n: fx.Node):
        net = self.net
        if n.op == "call_module" and n.target == net._classifier:
            (x,), _ = self.fetch_args_kwargs_from_env(n)
            return ops.linear(x, net.classifier)
        out = super().run_node(n)
        f = net.value_fracs.get(n.name)
        if f is not None:
            out = ops.fake_quant(out, f)
        if n.op == "placeholder":
            self.p = out
            if net.reprogram is not None:
                out = out + net.reprogram
        i = net._at.get(n.name)
        if i is not None:
            out = net._connect(i, out, self)
        return out

    def call_module(self, target, args, kwargs):
        m = self.fetch_attr(target)
        x = args[0]
        if isinstance(m, nn.Conv2d):
            return ops.conv(x, m)
        if isinstance(m, nn.BatchNorm2d):
            return ops.bn(x, m)
        if isinstance(m, nn.ReLU):
            return ops.relu(x)
        if isinstance(m, nn.Linear):
            return ops.linear(x, m)
        if isinstance(m, nn.MaxPool2d):
            return ops.maxpool(x, m)
        if isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1)):
            return ops.global_pool(x)
        return super().call_module(target, args, kwargs)

    def call_function(self, target, args, kwargs):
        if target in (F.relu, torch.relu):
            return ops.relu(args[0])
        return super().call_function(target, args, kwargs)

    def call_method(self, target, args, kwargs):
        if target in ("relu", "relu_"):
            return ops.relu(args[0])
        return super().call_method(target, args, kwargs)


class TransferNet(nn.Module):
    """A backbone adapted to a new task by one of METHODS (and, for Rep-Net, one of DESIGNS).

    ``state_dict`` keys: ``backbone.*`` (the backbone's own), ``classifier.*``, ``repnet.*``,
    ``reprogram``. The backbone's old classifier stays in ``backbone`` untouched and unused.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, method: str = "repnet", design: str = "dual",
                 width: float = 0.5, input_shape=None):
        super().__init__()
        from ..export.graph import trace
        self.method_name, self.design_name = method, design
        self.method, self.design = method_of(method), design_of(design)
        if input_shape is None:
            raise ConfigError("TransferNet needs the backbone's input_shape (C, H, W)")
        self.input_shape = tuple(int(v) for v in input_shape)
        if int(num_classes) < 2:
            raise ConfigError(f"the new task needs at least 2 classes, got {num_classes}")
        self.backbone = backbone
        gm = trace(backbone)
        object.__setattr__(self, "_gm", gm)          # shares the backbone's modules; not registered twice
        conns, cls_node = find_connectors(backbone, self.input_shape, self.design.every_block)
        self._classifier = next(n.target for n in gm.graph.nodes if n.name == cls_node)
        old = gm.get_submodule(self._classifier)
        self.classifier = nn.Linear(old.in_features, int(num_classes))
        self.repnet = RepNet(self.input_shape, conns, width) if self.method.trains == "repnet" else None
        self.connectors = conns if self.repnet is not None else []
        self.width = float(width)
        self.reprogram = nn.Parameter(torch.zeros(1, *self.input_shape)) if self.method.trains == "reprogram" else None
        self._at = {c.node: i for i, c in enumerate(self.connectors)}
        self.fracs: list[int | None] = [None] * len(self.connectors)
        self.value_fracs: dict[str, int] = {}
        self._set_trainable()

    # -- configuration --------------------------------------------------------------------
    def _set_trainable(self) -> None:
        trains = self.method.trains
        old = self._gm.get_submodule(self._classifier)
        for name, p in self.backbone.named_parameters():
            if trains == "all":
                p.requires_grad_(True)
            elif trains == "bias-bn":
                owner = self.backbone.get_submodule(name.rsplit(".", 1)[0]) if "." in name else self.backbone
                p.requires_grad_(isinstance(owner, nn.BatchNorm2d) or name.endswith(".bias"))
            else:
                p.requires_grad_(False)
        for p in old.parameters():
            p.requires_grad_(False)

    def set_formats(self, fracs: list[int | None], values: dict[str, int] | None = None) -> None:
        """The backbone artifact's int16 formats (fraction bits), which the forward models.

        fracs: per connector, the format the backbone carries its value in (None: float on the
        host); the connector quantizes x + p to it, saturating, as the deployed one does.
        values: {fx node: format} of every backbone value the artifact holds in int16 (tconv and
        add outputs, values quantized for the engine); the forward rounds and saturates them there
        too, so a Rep-Net that pushes the backbone out of its calibrated range sees the saturation
        it will meet on the board. Only for a frozen backbone (method repnet or last).
        """
        if len(fracs) != len(self.connectors):
            raise ConfigError(f"{len(fracs)} formats for {len(self.connectors)} connectors")
        self.fracs = [None if f is None else int(f) for f in fracs]
        frozen = self.method.trains in ("repnet", "classifier")
        self.value_fracs = {str(k): int(v) for k, v in (values or {}).items()} if frozen else {}

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and not self.method.bn_train:
            self.backbone.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # -- forward --------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ConfigError(f"input of shape {tuple(x.shape[1:])}; the backbone takes {self.input_shape}")
        return _Run(self).run(x)

    def _connect(self, i: int, x: torch.Tensor, run: _Run) -> torch.Tensor:
        c, d = self.connectors[i], self.design
        p = self.repnet.blocks[i](run.p)
        s = x + p
        run.p = s if d.to_repnet and c.kind != "head" else p
        if c.kind == "head":
            return s
        if not d.to_backbone:
            return x
        return ops.fake_quant(s, self.fracs[i]) if self.fracs[i] is not None else s

    def describe(self) -> str:
        n = sum(p.numel() for p in self.trainable_parameters())
        where = ", ".join(c.describe() for c in self.connectors) or "none"
        return (f"{self.method_name}" + (f" ({self.design_name}, width {self.width:g})" if self.repnet else "")
                + f": {n:,} trainable parameters; connectors: {where}")


def saved_keys(net: TransferNet) -> list[str]:
    """The state_dict entries a transfer checkpoint must hold: everything the method may change
    (the whole backbone for full / bias-bn, since their BN statistics move too)."""
    keys = list(net.state_dict())
    if net.method.trains in ("all", "bias-bn"):
        return keys
    return [k for k in keys if not k.startswith("backbone.")]


__all__ = ["DESIGNS", "METHODS", "Design", "Method", "RepBlock", "RepNet", "TransferNet", "design_of",
           "method_of", "saved_keys"]
