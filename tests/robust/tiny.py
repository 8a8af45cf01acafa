"""A tiny artifact built with numpy alone, with every op of the format (host conv, quantize, two
accelerated layers of both kernels and strides, an option-A shortcut, an int16 residual add,
max pooling, dequantize, global average pooling, flatten, a linear classifier): the subject
of the loader's rule tests and its fuzz test, fast enough to run hundreds of times."""

from __future__ import annotations

import numpy as np

from pesto import artifact as A
from pesto import geometry, numerics
from pesto.ir import TernaryConv


def _layer(name, rng, n, c, k, cg, stride, pad, f_in, f_out, relu, sparsity=0.4):
    codes = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=(n, c, k, k), p=[0.3, 0.4, 0.3])
    dead = rng.random((n, geometry.num_groups(c, cg))) < sparsity
    codes = np.where(geometry.expand_group_mask(~dead, cg, c, k, k), codes, 0).astype(np.int8)
    scale = rng.uniform(0.5, 1.5, n) / (c * k * k) ** 0.5
    mult, shift, bias = numerics.fold_output_stage(scale, rng.uniform(-0.1, 0.1, n), f_in, f_out)
    return TernaryConv(name, codes, mult, shift, bias, stride=stride, padding=pad, cg=cg, relu=relu,
                       f_in=f_in, f_out=f_out)


def tiny_artifact(seed: int = 0) -> A.Artifact:
    rng = np.random.default_rng(seed)
    f32 = np.float32
    t1 = _layer("t1", rng, 4, 4, 3, 2, 1, 1, 12, 11, True)
    t2 = _layer("t2", rng, 8, 4, 1, 4, 2, 0, 11, 10, False)
    nodes = [
        A.Node("input", "input", attrs={"shape": [1, 8, 8]}),
        A.Node("conv1", "conv", ["input"], {"stride": 1, "padding": 1, "relu": True},
               {"weight": rng.normal(0, 0.5, (4, 1, 3, 3)).astype(f32), "bias": rng.normal(0, 0.1, 4).astype(f32)}),
        A.Node("conv1.q", "quantize", ["conv1"], frac=12),
        A.Node("t1", "tconv", ["conv1.q"], {"alpha": 0.5, "acc_bound_bits": 20}, layer=t1, frac=11),
        A.Node("t2", "tconv", ["t1"], layer=t2, frac=10),
        A.Node("sc", "shortcut", ["t1"], {"stride": 2, "pad_before": 2, "pad_after": 2}, frac=11),
        A.Node("add", "add", ["t2", "sc"], {"relu": True}, frac=10),
        A.Node("mp", "maxpool", ["add"], {"kernel": 2, "stride": 2, "padding": 0}, frac=10),
        A.Node("mp.dq", "dequantize", ["mp"]),
        A.Node("pool", "avgpool", ["mp.dq"], {"kernel": None, "stride": None}),
        A.Node("flat", "flatten", ["pool"]),
        A.Node("fc", "linear", ["flat"], {"relu": False},
               {"weight": rng.normal(0, 0.5, (10, 8)).astype(f32), "bias": rng.normal(0, 0.1, 10).astype(f32)}),
    ]
    meta = {"model": {"name": "tiny"}, "num_classes": 10,
            "input": {"shape": [1, 8, 8], "layout": "NCHW", "mean": [0.3], "std": [0.35],
                      "normalisation": "x = (pixel / 255 - mean[c]) / std[c]"},
            "numerics": dict(A.rules.NUMERICS)}
    return A.Artifact(nodes, "fc", meta)


def images(n: int = 2, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 1, 8, 8), dtype=np.uint8)


def tiny_multi(seed: int = 0) -> A.Artifact:
    """Two sub-nets of tiny_artifact(seed): the second keeps about half of each layer's groups
    and has its own output stages and classifier bias."""
    base = tiny_artifact(seed)
    rng = np.random.default_rng(seed + 7)
    views = [base]
    nodes = []
    for node in base.nodes:
        new = A.Node(node.name, node.op, list(node.inputs), dict(node.attrs), dict(node.arrays), frac=node.frac)
        if node.op == "tconv":
            lay = node.layer
            issue = lay.indexer & (rng.random(lay.indexer.shape) < 0.5)
            n, c, kh, kw = lay.codes.shape
            codes = np.where(geometry.expand_group_mask(issue, lay.cg, c, kh, kw), lay.codes, 0)
            new.layer = TernaryConv(lay.name, codes, lay.mult, lay.shift, lay.bias + 3, stride=lay.stride,
                                    padding=lay.padding, cg=lay.cg, relu=lay.relu, f_in=lay.f_in, f_out=lay.f_out)
            new.attrs["nnz_groups"] = new.layer.nnz_groups
        elif node.op == "linear":
            new.arrays["bias"] = (node.arrays["bias"] + 0.25).astype(np.float32)
        nodes.append(new)
    views.append(A.Artifact(nodes, base.output, dict(base.meta)))
    return A.merge_subnets(views, ["full", "half"])
