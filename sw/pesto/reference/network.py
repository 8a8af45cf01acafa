"""The whole network, bit-exact in the integer domain (numpy only): the one place that runs an
artifact's layer graph.

Host layers (first conv, pooling, last linear) run in float32 numpy; every accelerated layer
goes through ``conv(x_int16, layer)``, by default the golden ``reference.layer.run_conv``. The
driver plugs the board or the RTL simulation in through the same argument, so the graph
logic exists once. Residual adds use ``numerics.add``; option-A shortcuts and max pooling of
int16 tensors stay in the integer domain (both are exact there).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import numerics
from ..artifact import Artifact, Node
from ..errors import ConfigError
from ..ir import TernaryConv
from ..validate import check_int, unit_images
from .layer import run_conv

ConvFn = Callable[[np.ndarray, TernaryConv], np.ndarray]


class Chain:
    """The accelerated chain of a network as one call (network mode, docs/accelerator-v2.md):
    ``fn(x int16 (B, C, H, W) at node ``start``) -> int16 output of node ``end``, which the
    single dequantize reads. ``run(..., chain=Chain(...))`` runs the host layers around it and
    never evaluates the nodes between ``start`` and that dequantize."""

    def __init__(self, start: str, end: str, fn: Callable[[np.ndarray], np.ndarray]):
        self.start, self.end, self.fn = start, end, fn


def normalize(artifact: Artifact, images) -> np.ndarray:
    """Raw images -> the float32 tensor the network's first layer expects.

    images: (B, C, H, W) or (C, H, W) of the artifact's input shape: uint8 pixels (0..255),
    other integers holding pixels 0..255, or floats in [0, 1] (what ToTensor gives); anything
    else (NaN, inf, out of range, wrong shape, empty) is a ConfigError saying what was expected
    (``pesto.validate.unit_images``). Applies the artifact's per-channel (x - mean) / std.
    """
    c, h, w = artifact.input_shape
    x = unit_images(images, f"images for this {c}x{h}x{w} model", c, (h, w))
    return (x - artifact.mean.reshape(1, -1, 1, 1)) / artifact.std.reshape(1, -1, 1, 1)


def run(artifact: Artifact, images, conv: ConvFn | None = None, trace: bool = False,
        normalized: bool = False, subnet=None, chain: Chain | None = None):
    """Logits (B, num_classes) float32 of raw images (see ``normalize``).

    subnet: which sub-net of a multi-sub-net artifact runs (index or name; docs/subnets.md);
    required when the artifact holds several, since the golden never guesses.

    conv: runs one accelerated layer, ``conv(x int16 (B, C, H, W), layer) -> int16 (B, N, Ho, Wo)``;
    default the numpy golden. normalized=True: images are already normalised (skip ``normalize``).
    trace=True: also return {node name: output} for every node (int16 or float32 arrays).
    chain: run the accelerated chain in one call instead of node by node (``Chain``); the
    trace then holds no values of the nodes inside it.
    """
    conv = conv or run_conv
    artifact = select(artifact, subnet)
    x = _normalized(artifact, images) if normalized else normalize(artifact, images)
    by_name = {n.name: n for n in artifact.nodes}
    last_use = {}
    for i, node in enumerate(artifact.nodes):
        for name in node.inputs:
            last_use[name] = i
    values: dict[str, np.ndarray] = {}
    inside = _chain_nodes(artifact, chain) if chain is not None else set()
    for i, node in enumerate(artifact.nodes):
        if node.name in inside:
            continue
        if chain is not None and node.name == chain.end:
            values[node.name] = _chain_output(chain, values[chain.start], by_name[chain.end])
            continue
        ins = [values[name] for name in node.inputs]
        fracs = [by_name[name].frac for name in node.inputs]
        values[node.name] = _run_node(node, ins, fracs, x, conv)
        if not trace:  # free what no later node reads
            for name in node.inputs:
                if last_use[name] == i and name != artifact.output:
                    del values[name]
    out = values[artifact.output]
    frac = by_name[artifact.output].frac
    logits = numerics.dequantize(out, frac) if frac is not None else out.astype(np.float32)
    return (logits, values) if trace else logits


def _chain_nodes(artifact: Artifact, chain: Chain) -> set[str]:
    """The nodes strictly between ``chain.start`` and ``chain.end`` (which ``chain`` replaces)."""
    names = [n.name for n in artifact.nodes]
    if chain.start not in names or chain.end not in names or names.index(chain.end) <= names.index(chain.start):
        raise ConfigError(f"chain {chain.start!r} .. {chain.end!r} is not a span of the artifact's nodes")
    return set(names[names.index(chain.start) + 1:names.index(chain.end)])


def _chain_output(chain: Chain, x: np.ndarray, end: Node) -> np.ndarray:
    y = np.asarray(chain.fn(x))
    if y.dtype != np.int16 or y.ndim != 4 or y.shape[0] != x.shape[0]:
        raise ConfigError(f"the accelerated chain returned {y.dtype} {y.shape}, expected int16 "
                          f"({x.shape[0]}, C, H, W) for node {end.name!r}")
    return y


def _normalized(artifact: Artifact, images) -> np.ndarray:
    """Already normalised float images: the right shape, finite."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    c, h, w = artifact.input_shape
    if x.ndim != 4 or x.shape[1:] != (c, h, w) or len(x) == 0:
        raise ConfigError(f"normalised images must be (batch >= 1, {c}, {h}, {w}) float32, got {x.shape}")
    if not np.isfinite(x).all():
        raise ConfigError("normalised images hold NaN or inf")
    return x


def select(artifact: Artifact, subnet=None) -> Artifact:
    """The plain artifact of sub-net ``subnet`` (index or name); a single-sub-net artifact as is."""
    if subnet is None:
        if artifact.num_subnets > 1:
            raise ConfigError(f"the artifact holds {artifact.num_subnets} sub-nets "
                              f"({', '.join(artifact.subnet_names)}); say which one runs (subnet=index or name)")
        return artifact
    return artifact.subnet(subnet)


def run_batched(artifact: Artifact, images, conv: ConvFn | None = None, batch_size: int = 256,
                progress: bool = False, subnet=None) -> np.ndarray:
    """Logits of raw images, in batches of ``batch_size`` (``run`` on each)."""
    artifact = select(artifact, subnet)
    batch_size = check_int(batch_size, "batch_size", 1)
    try:
        images = np.asarray(images)
    except (ValueError, TypeError):
        normalize(artifact, images)   # raises, saying what was expected
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or len(images) == 0:
        normalize(artifact, images)   # raises, saying what was expected
    batches = range(0, len(images), batch_size)
    if progress:
        from tqdm import tqdm
        batches = tqdm(batches, desc="integer pipeline", unit="batch")
    return np.concatenate([run(artifact, images[i:i + batch_size], conv) for i in batches])


def predict(artifact: Artifact, images, conv: ConvFn | None = None, batch_size: int = 256,
            progress: bool = False, subnet=None) -> np.ndarray:
    """Class indices of raw images, in batches (``run`` on each)."""
    return run_batched(artifact, images, conv, batch_size, progress, subnet).argmax(axis=1)


def _run_node(node: Node, ins: list, fracs: list, x: np.ndarray, conv: ConvFn) -> np.ndarray:
    a = node.attrs
    op = node.op
    if op == "input":
        return x
    v = ins[0]
    if op == "quantize":
        return numerics.quantize(v, node.frac)
    if op == "dequantize":
        return numerics.dequantize(v, fracs[0])
    if op == "tconv":
        y = np.asarray(conv(v, node.layer))
        n = node.layer.out_channels
        if y.dtype != np.int16 or y.ndim != 4 or y.shape[:2] != (v.shape[0], n):
            raise ConfigError(f"layer {node.name!r}: conv returned {y.dtype} {y.shape}, expected int16 "
                              f"({v.shape[0]}, {n}, Ho, Wo)")
        return y
    if op == "add":
        if node.frac is not None:
            return numerics.add(v, fracs[0], ins[1], fracs[1], node.frac, bool(a.get("relu")))
        out = v + ins[1]
        return np.maximum(out, 0) if a.get("relu") else out
    if op == "relu":
        return np.maximum(v, 0).astype(v.dtype)
    if op == "shortcut":
        s = int(a["stride"])
        sub = v[:, :, ::s, ::s]
        return np.pad(sub, ((0, 0), (int(a["pad_before"]), int(a["pad_after"])), (0, 0), (0, 0)))
    if op == "maxpool":
        return _maxpool(v, int(a["kernel"]), int(a["stride"]), int(a["padding"]))
    if op == "avgpool":
        if a.get("output_size"):
            return _adaptive_avgpool(v, *a["output_size"])
        return _avgpool(v, a.get("kernel"), a.get("stride"))
    if op == "flatten":
        return v.reshape(v.shape[0], -1)
    if op == "conv":
        y = conv2d_float(v, node.arrays["weight"], node.arrays.get("bias"), int(a["stride"]), int(a["padding"]))
        return np.maximum(y, 0) if a.get("relu") else y
    if op == "linear":
        # float64 accumulation: float32 products are exact in it, so the float32 result does
        # not depend on the batch size (BLAS blocking) in practice
        y = v.astype(np.float64) @ node.arrays["weight"].T.astype(np.float64)
        if "bias" in node.arrays:
            y = y + node.arrays["bias"]
        y = y.astype(np.float32)
        return np.maximum(y, 0) if a.get("relu") else y
    raise ConfigError(f"node {node.name!r}: unknown op {op!r}")


def conv2d_float(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, padding: int) -> np.ndarray:
    """float32 conv of (B, C, H, W) with (N, C, Kh, Kw), one matrix product per kernel tap,
    accumulated in float64 (exact float32 products) so the result does not depend on the batch."""
    n, c, kh, kw = w.shape
    bsz, _, h, wd = x.shape
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (wd + 2 * padding - kw) // stride + 1
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    w = w.astype(np.float64)
    out = np.zeros((bsz, n, ho, wo), dtype=np.float64)
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, :, ky:ky + stride * (ho - 1) + 1:stride, kx:kx + stride * (wo - 1) + 1:stride]
            out += np.einsum("nc,bchw->bnhw", w[:, :, ky, kx], patch, optimize=True)
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out.astype(np.float32)


def _maxpool(x: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    """Max pooling; padding never wins (as in PyTorch). Exact on int16."""
    low = np.iinfo(x.dtype).min if np.issubdtype(x.dtype, np.integer) else -np.inf
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=low)
    h, w = x.shape[2:]
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = None
    for ky in range(k):
        for kx in range(k):
            tap = xp[:, :, ky:ky + s * (ho - 1) + 1:s, kx:kx + s * (wo - 1) + 1:s]
            out = tap if out is None else np.maximum(out, tap)
    return out


def _adaptive_avgpool(x: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """PyTorch's adaptive average pooling: cell i covers [floor(i*H/oh), ceil((i+1)*H/oh))."""
    x = x.astype(np.float64)
    h, w = x.shape[2:]
    out = np.empty(x.shape[:2] + (oh, ow), dtype=np.float64)
    for i in range(oh):
        y0, y1 = (i * h) // oh, -((-(i + 1) * h) // oh)
        for j in range(ow):
            x0, x1 = (j * w) // ow, -((-(j + 1) * w) // ow)
            out[:, :, i, j] = x[:, :, y0:y1, x0:x1].mean(axis=(2, 3))
    return out.astype(np.float32)


def _avgpool(x: np.ndarray, k, s) -> np.ndarray:
    """Average pooling in float32 (kernel None: global average)."""
    x = x.astype(np.float32)
    if k is None:
        return x.mean(axis=(2, 3), keepdims=True, dtype=np.float64).astype(np.float32)
    k, s = int(k), int(s or k)
    h, w = x.shape[2:]
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    acc = np.zeros(x.shape[:2] + (ho, wo), dtype=np.float64)
    for ky in range(k):
        for kx in range(k):
            acc += x[:, :, ky:ky + s * (ho - 1) + 1:s, kx:kx + s * (wo - 1) + 1:s]
    return (acc / (k * k)).astype(np.float32)
