"""Networks to test and measure the accelerator on, built in numpy (no torch, no training).

* ``ChainBuilder``: a graph of the artifact's ops by hand (host conv, quantize, tconv, add,
  shortcut, relu, dequantize, pooling, classifier), for networks with every glue variant;
* ``random_chain(seed)``: such a network drawn at random (1x1 / 3x3, stride 1 / 2, fused and
  unfused adds, option-A shortcuts with any channel offset, standalone ReLU, any N);
* ``resnet_artifact(depth, size, ...)``: a CIFAR-style ResNet (option-A shortcuts) with random
  ternary codes and an exact group sparsity per layer (the benchmark's ResNet-20 at 32x32x3);
* ``random_subnets(artifact, keep)``: a K-sub-net artifact whose sub-nets keep random fractions
  of every layer's groups, with perturbed output stages (docs/subnets.md).

Every output stage is drawn so that most outputs stay away from saturation, so a wrong
accumulator shows up in the outputs.
"""

from __future__ import annotations

import numpy as np

from .. import artifact as A
from .. import geometry
from ..ir import TernaryConv
from .measure import make_layer


class ChainBuilder:
    """Build an artifact node by node: ``b = ChainBuilder(3, 16, 16); x = b.quantize(10);
    y = b.conv(x, 16); ...; art = b.finish(y)``."""

    def __init__(self, channels: int, h: int, w: int, seed: int = 0, host_conv: int | None = None):
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.nodes = [A.Node("input", "input", [], {"shape": [channels, h, w]})]
        self.shapes = {"input": (channels, h, w)}
        self.frac = {"input": None}
        self.last = "input"
        self.input_shape = (channels, h, w)
        if host_conv:
            wgt = self.rng.normal(0, 0.5, (host_conv, channels, 3, 3)).astype(np.float32)
            self._add(A.Node("conv1", "conv", ["input"], {"stride": 1, "padding": 1, "relu": True},
                             {"weight": wgt, "bias": self.rng.normal(0, 0.1, host_conv).astype(np.float32)}),
                      (host_conv, h, w))

    def _add(self, node: A.Node, shape) -> str:
        self.nodes.append(node)
        self.shapes[node.name] = shape
        self.frac[node.name] = node.frac
        self.last = node.name
        return node.name

    def _name(self, op: str) -> str:
        return f"{op}{len(self.nodes)}"

    def quantize(self, frac: int = 10) -> str:
        return self._add(A.Node("q", "quantize", [self.last], frac=frac), self.shapes[self.last])

    def conv(self, src: str, n: int, k: int = 3, stride: int = 1, relu: bool = True, group_sparsity: float = 0.25,
             cg: int = 16, frac: int = 11, name: str | None = None) -> str:
        c, h, w = self.shapes[src]
        name = name or self._name("conv")
        layer = make_layer(n, c, k, cg, group_sparsity=group_sparsity, stride=stride, padding=k // 2,
                           relu=relu, seed=int(self.rng.integers(1 << 30)), name=name)
        layer.f_in, layer.f_out = self.frac[src], frac
        ho, wo = layer.out_hw(h, w)
        node = A.Node(name, "tconv", [src], {"nnz_groups": layer.nnz_groups}, frac=frac)
        node.layer = layer
        return self._add(node, (n, ho, wo))

    def add(self, a: str, b: str, relu: bool = True, frac: int = 10) -> str:
        assert self.shapes[a] == self.shapes[b], (self.shapes[a], self.shapes[b])
        return self._add(A.Node(self._name("add"), "add", [a, b], {"relu": relu}, frac=frac), self.shapes[a])

    def shortcut(self, src: str, stride: int, pad_before: int, pad_after: int) -> str:
        c, h, w = self.shapes[src]
        node = A.Node(self._name("shortcut"), "shortcut", [src],
                      {"stride": stride, "pad_before": pad_before, "pad_after": pad_after}, frac=self.frac[src])
        return self._add(node, (c + pad_before + pad_after, -(-h // stride), -(-w // stride)))

    def relu(self, src: str) -> str:
        return self._add(A.Node(self._name("relu"), "relu", [src], frac=self.frac[src]), self.shapes[src])

    def finish(self, src: str, classes: int = 10, name: str = "chain") -> A.Artifact:
        """dequantize -> global average pool -> flatten -> linear; returns the artifact."""
        c = self.shapes[src][0]
        self._add(A.Node(src + ".dq", "dequantize", [src]), self.shapes[src])
        self._add(A.Node("avgpool", "avgpool", [self.last], {"kernel": None, "stride": None}), (c, 1, 1))
        self._add(A.Node("flatten", "flatten", [self.last]), (c,))
        wgt = self.rng.normal(0, 0.1, (classes, c)).astype(np.float32)
        self._add(A.Node("fc", "linear", [self.last], {"relu": False},
                         {"weight": wgt, "bias": np.zeros(classes, dtype=np.float32)}), (classes,))
        ch, h, w = self.input_shape
        meta = {"model": {"name": name, "seed": self.seed}, "num_classes": classes,
                "input": {"shape": [ch, h, w], "mean": [0.0] * ch, "std": [1.0] * ch}}
        return A.Artifact(self.nodes, "fc", meta)


def resnet_artifact(depth: int = 20, size: int = 32, in_channels: int = 3, width: int = 16,
                    group_sparsity: float = 0.25, cg: int = 16, seed: int = 0) -> A.Artifact:
    """A CIFAR-style ResNet-``depth`` (3 stages of (depth - 2) / 6 basic blocks, option-A
    shortcuts) on ``in_channels`` x size x size with random codes and exactly ``group_sparsity``
    of every accelerated layer's groups zero (random placement); host first conv and classifier."""
    if (depth - 2) % 6:
        raise ValueError(f"a CIFAR ResNet has depth 6n + 2, got {depth}")
    b = ChainBuilder(in_channels, size, size, seed=seed, host_conv=width)
    x = b.quantize(10)
    c = width
    for stage in range(3):
        for block in range((depth - 2) // 6):
            stride = 2 if stage and block == 0 else 1
            out = width << stage
            h = b.conv(x, out, 3, stride, relu=True, group_sparsity=group_sparsity, cg=cg, frac=11,
                       name=f"layer{stage + 1}.{block}.conv1")
            h = b.conv(h, out, 3, 1, relu=False, group_sparsity=group_sparsity, cg=cg, frac=11,
                       name=f"layer{stage + 1}.{block}.conv2")
            if stride != 1 or out != c:
                pad = (out - c) // 2
                x = b.shortcut(x, stride, pad, out - c - pad)
            x = b.add(h, x, relu=True, frac=10)
            c = out
    return b.finish(x, name=f"resnet{depth}-{size}x{size}-gs{group_sparsity:g}")


def random_chain(seed: int = 0, size: int = 9, lanes: int = 16) -> A.Artifact:
    """A random int16 chain with every glue variant: 3x3 and 1x1 convs at stride 1 and 2, channel
    counts that are not multiples of ``lanes``, Cg 8 / 16 / 32, a fused residual add, an unfused
    add (both operands used elsewhere), an option-A shortcut with an offset that is not a
    multiple of ``lanes``, a standalone ReLU, all-zero channels and a fully zero layer."""
    rng = np.random.default_rng(seed)
    b = ChainBuilder(int(rng.integers(3, 20)), size, size + int(rng.integers(0, 3)), seed=seed,
                     host_conv=int(rng.choice([8, 16, 24])))
    x = b.quantize(int(rng.integers(8, 12)))
    c1 = int(rng.choice([12, 16, 20]))
    h = b.conv(x, c1, 3, 1, relu=True, group_sparsity=float(rng.choice([0.0, 0.3, 0.6])), cg=int(rng.choice([8, 16])))
    r = b.relu(b.conv(h, c1, 1, 1, relu=False, group_sparsity=0.5, cg=16))        # 1x1 + standalone relu
    y = b.add(b.conv(r, c1, 3, 1, relu=False, group_sparsity=0.4), h, relu=True)   # fused add
    c2 = c1 + int(rng.choice([6, 12, 20]))
    pad = int(rng.integers(0, c2 - c1 + 1))
    s = b.shortcut(y, 2, pad, c2 - c1 - pad)                                       # option-A, any offset
    d = b.conv(y, c2, 3, 2, relu=True, group_sparsity=0.5, cg=int(rng.choice([16, 32])))
    z = b.add(b.conv(d, c2, 3, 1, relu=False, group_sparsity=0.9), s, relu=True)   # > 90 % zero groups
    u = b.conv(z, c2, 1, 2, relu=False, group_sparsity=1.0)                        # 1x1 stride 2, all zero
    v = b.conv(z, c2, 1, 2, relu=True, group_sparsity=0.0)
    w = b.add(u, v, relu=False)                                                    # unfused: both convs...
    out = b.add(w, b.relu(v), relu=True)                                           # ...feed other nodes
    return b.finish(out, name=f"random-chain-{seed}")


def random_subnets(art: A.Artifact, keep=(0.9, 0.6, 0.3), seed: int = 0, names=None) -> A.Artifact:
    """A len(keep)-sub-net artifact over ``art``'s codes (the merge of ``random_views``)."""
    names = names or [f"keep{int(round(100 * f))}" for f in keep]
    metas = [{"target_group_sparsity": 1 - f} for f in keep]
    return A.merge_subnets(random_views(art, keep, seed), names, metas)


def random_views(art: A.Artifact, keep=(0.9, 0.6, 0.3), seed: int = 0) -> list[A.Artifact]:
    """len(keep) plain artifacts of ``art``'s graph: view k keeps a random fraction keep[k] of every
    layer's stored groups and gets its own (perturbed, valid) output stages and first-conv bias."""
    rng = np.random.default_rng(seed)
    views = []
    for k, frac in enumerate(keep):
        nodes = []
        for node in art.nodes:
            new = A.Node(node.name, node.op, list(node.inputs), dict(node.attrs), dict(node.arrays), frac=node.frac)
            if node.op == "tconv":
                lay = node.layer
                issue = lay.indexer & (rng.random(lay.indexer.shape) < frac)
                n, c, kh, kw = lay.codes.shape
                codes = np.where(geometry.expand_group_mask(issue, lay.cg, c, kh, kw), lay.codes, 0)
                mult = np.clip(lay.mult + rng.integers(-3, 4, n), -32768, 32767)
                new.layer = TernaryConv(lay.name, codes, mult, lay.shift, lay.bias + rng.integers(-50, 50, n),
                                        stride=lay.stride, padding=lay.padding, cg=lay.cg, relu=lay.relu,
                                        f_in=lay.f_in, f_out=lay.f_out)
                new.attrs["nnz_groups"] = new.layer.nnz_groups
            elif node.op == "conv" and "bias" in node.arrays:
                new.arrays["bias"] = (node.arrays["bias"] + 0.01 * k).astype(np.float32)
            nodes.append(new)
        views.append(A.Artifact(nodes, art.output, dict(art.meta)))
    return views


def chain_io(art: A.Artifact, images, subnet=None) -> tuple[np.ndarray, np.ndarray]:
    """(int16 input, int16 output) of the accelerated chain on ``images``, from the reference."""
    from ..hwspec.program import accelerated_chain
    from ..reference import network
    _, q, dq = accelerated_chain(art)
    view = network.select(art, subnet if subnet is not None or art.num_subnets == 1 else 0)
    _, trace = network.run(view, images, trace=True)
    return trace[q.name], trace[dq.inputs[0]]


def random_images(art: A.Artifact, count: int, seed: int = 0) -> np.ndarray:
    """uint8 images of the artifact's input shape."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, *art.input_shape), dtype=np.uint8)


def layer_count(art: A.Artifact) -> int:
    return sum(1 for n in art.nodes if n.op == "tconv")


__all__ = ["ChainBuilder", "resnet_artifact", "random_chain", "random_subnets", "chain_io", "random_images",
           "layer_count"]
