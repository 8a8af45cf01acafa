"""QONNX export of an artifact: the integer pipeline as a quantized ONNX graph that qonnx, FINN
and hls4ml read (``pesto export-to-fpga --qonnx PATH``; docs/interop.md).

Built from the artifact alone (numpy + onnx, no torch), node by node, so the graph is the
integer reference's own arithmetic written with QONNX ``Quant`` nodes (domain
``qonnx.custom_op.general``). Tensors hold real values; an int16 tensor of format f holds
q * 2**-f exactly:

  quantize (float -> int16 at f)   Add(2**-(f+1)) -> Quant(scale 2**-f, 16 bit, FLOOR)
                                   = clamp(floor(x * 2**f + 0.5)), pesto's round half up
  tconv                            Quant(codes, scale 1, 2 bit, signed, narrow) -> ternary weights;
                                   Conv -> Mul(mult * 2**(f_in - shift - f_out)) per channel
                                   -> Add((bias * 2**-shift + 0.5) * 2**-f_out) per channel
                                   -> Quant(scale 2**-f_out, 16 bit, FLOOR) [-> Relu]
  residual add (int)               each operand rescaled to f_out as numerics.rescale does
                                   (a rounding right shift is Add + Quant(FLOOR), 32 bit),
                                   Add -> Quant(16 bit) [-> Relu]
  option-A shortcut                a 1x1 Conv of stride s with 0/1 weights (subsample, zero channels)
  host layers                      Conv / Gemm / MaxPool / (Global)AveragePool / Flatten / Relu in float

The batch dimension is symbolic ("batch"); there is no Identity, Slice or Pad node (hls4ml
refuses them). Executed by qonnx's own executor (``run_qonnx``) the graph computes in float32,
which is exact for the quantizers, the ternary convolutions (integer partial sums below 2**24)
and the residual adds, but not for two things the reference does in wider arithmetic: the
output stage's product acc * mult (up to 47 bits, rounded to float32's 24) and the host float
layers (float64 accumulation in the reference). Where such a rounding lands within a float32
ulp of a rounding boundary an int16 output differs by one LSB and the difference propagates;
``compare_with_reference`` measures it (docs/interop.md states the figures).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import numerics
from ..artifact import Artifact
from ..errors import ConfigError, UnsupportedLayerError
from ..util import atomic_write_bytes

OPSET = 13
QONNX_DOMAIN = "qonnx.custom_op.general"
INPUT, OUTPUT = "images", "logits"


class _Graph:
    """Accumulates ONNX nodes and initializers with unique names."""

    def __init__(self):
        from onnx import helper, numpy_helper
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits, self.names = [], [], set()

    def name(self, base: str) -> str:
        out, k = base, 1
        while out in self.names:
            out, k = f"{base}_{k}", k + 1
        self.names.add(out)
        return out

    def const(self, base: str, value, dtype=np.float32) -> str:
        name = self.name(base)
        self.inits.append(self.numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], base: str, domain: str = "", **attrs) -> str:
        if op_type == "Conv":   # explicit, as qonnx's channels-last conversion requires
            attrs = {"dilations": [1, 1], "group": 1, "pads": [0, 0, 0, 0], "strides": [1, 1], **attrs}
        out = self.name(base)
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=out, domain=domain, **attrs))
        return out

    def quant(self, x: str, frac: int, bits: int, base: str, signed: bool = True, narrow: bool = False,
              rounding: str = "FLOOR") -> str:
        """Quant to a signed ``bits``-bit grid of step 2**-frac (qonnx clamps, then rounds)."""
        ins = [x, self.const(f"{base}/scale", 2.0 ** -frac), self.const(f"{base}/zeropt", 0.0),
               self.const(f"{base}/bitwidth", float(bits))]
        return self.op("Quant", ins, base, domain=QONNX_DOMAIN, signed=int(signed), narrow=int(narrow),
                       rounding_mode=rounding)

    def round_to(self, x: str, frac: int, bits: int, base: str) -> str:
        """clamp(floor(x * 2**frac + 0.5)) * 2**-frac: pesto's round half up onto the grid."""
        return self.quant(self.op("Add", [x, self.const(f"{base}/half", 2.0 ** -(frac + 1))], f"{base}/add_half"),
                          frac, bits, base)

    def relu(self, x: str, on: bool, base: str) -> str:
        return self.op("Relu", [x], f"{base}/relu") if on else x


def to_qonnx(artifact: Artifact):
    """The artifact's layer graph as a QONNX ModelProto (see the module docstring)."""
    from onnx import TensorProto, checker, helper
    g = _Graph()
    g.names.update({INPUT, OUTPUT})
    frac = {n.name: n.frac for n in artifact.nodes}
    shapes = _shapes(artifact)
    value: dict[str, str] = {}
    for node in artifact.nodes:
        a, base = node.attrs, node.name
        x = value[node.inputs[0]] if node.inputs else None
        if node.op == "input":
            out = INPUT
        elif node.op == "quantize":
            out = g.round_to(x, node.frac, numerics.ACT_BITS, base)
        elif node.op == "dequantize":
            out = x                                   # the tensor already holds q * 2**-f
        elif node.op == "tconv":
            out = _tconv(g, node.layer, x, base)
        elif node.op == "add":
            y = value[node.inputs[1]]
            if node.frac is None:
                out = g.relu(g.op("Add", [x, y], base), bool(a.get("relu")), base)
            else:
                terms = [_rescale(g, t, frac[i], node.frac, f"{base}/in{k}")
                         for k, (t, i) in enumerate(zip((x, y), node.inputs))]
                s = g.quant(g.op("Add", terms, f"{base}/sum"), node.frac, numerics.ACT_BITS, base)
                out = g.relu(s, bool(a.get("relu")), base)
        elif node.op == "relu":
            out = g.op("Relu", [x], base)
        elif node.op == "shortcut":
            out = _shortcut(g, node, x, shapes[node.inputs[0]][0])
        elif node.op == "maxpool":
            k, s, p = int(a["kernel"]), int(a["stride"]), int(a["padding"])
            out = g.op("MaxPool", [x], base, kernel_shape=[k, k], strides=[s, s], pads=[p] * 4)
        elif node.op == "avgpool":
            out = _avgpool(g, node, x, shapes[node.inputs[0]][1:3])
        elif node.op == "flatten":
            out = g.op("Flatten", [x], base, axis=1)
        elif node.op == "conv":
            w, b = node.arrays["weight"], node.arrays.get("bias")
            ins = [x, g.const(f"{base}/weight", w)] + ([g.const(f"{base}/bias", b)] if b is not None else [])
            p, s = int(a["padding"]), int(a["stride"])
            y = g.op("Conv", ins, base, kernel_shape=list(w.shape[2:]), strides=[s, s], pads=[p] * 4)
            out = g.relu(y, bool(a.get("relu")), base)
        elif node.op == "linear":
            w = node.arrays["weight"]
            b = node.arrays.get("bias", np.zeros(w.shape[0], np.float32))
            y = g.op("Gemm", [x, g.const(f"{base}/weight", w), g.const(f"{base}/bias", b)], base, transB=1)
            out = g.relu(y, bool(a.get("relu")), base)
        else:
            raise UnsupportedLayerError(f"node {node.name!r}: op {node.op!r} has no QONNX form")
        value[node.name] = out
    final = value[artifact.output]
    if final == INPUT:
        raise ConfigError("the artifact's output is its input; nothing to export")
    for n in g.nodes:                                 # the last tensor is the graph output
        n.output[:] = [OUTPUT if o == final else o for o in n.output]
        n.input[:] = [OUTPUT if i == final else i for i in n.input]
    c, h, w = artifact.input_shape
    graph = helper.make_graph(
        g.nodes, f"pesto_{artifact.meta.get('model', {}).get('name', 'model')}",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", c, h, w])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", artifact.num_classes])], g.inits)
    model = helper.make_model(graph, producer_name="pesto",
                              opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(QONNX_DOMAIN, 1)])
    for key, val in (("pesto.description", "pesto integer pipeline as QONNX; input normalised as in the artifact"),
                     ("pesto.input.mean", repr(artifact.mean.tolist())), ("pesto.input.std", repr(artifact.std.tolist()))):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, val
    checker.check_model(model)
    return model


def layer_to_qonnx(layer, h: int, w: int):
    """One accelerated layer alone as a QONNX model: input "x" = q * 2**-f_in (B, C, h, w),
    output "y" = int16 * 2**-f_out (for checking each layer against the reference on its own)."""
    from onnx import TensorProto, checker, helper
    g = _Graph()
    g.names.update({"x", "y"})
    out = _tconv(g, layer, "x", layer.name)
    for n in g.nodes:
        n.output[:] = ["y" if o == out else o for o in n.output]
        n.input[:] = ["y" if i == out else i for i in n.input]
    ho, wo = layer.out_hw(h, w)
    graph = helper.make_graph(g.nodes, layer.name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", layer.in_channels, h, w])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", layer.out_channels, ho, wo])],
                              g.inits)
    model = helper.make_model(graph, producer_name="pesto",
                              opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(QONNX_DOMAIN, 1)])
    checker.check_model(model)
    return model


def _tconv(g: _Graph, layer, x: str, base: str) -> str:
    kh, kw = layer.kernel
    p, s = layer.padding, layer.stride
    weights = g.quant(g.const(f"{base}/codes", layer.codes.astype(np.float32)), 0, 2, f"{base}/weight_quant",
                      narrow=True, rounding="ROUND")
    acc = g.op("Conv", [x, weights], f"{base}/conv", kernel_shape=[kh, kw], strides=[s, s], pads=[p] * 4)
    shift = layer.shift.astype(np.float64)
    scale = layer.mult.astype(np.float64) * 2.0 ** (layer.f_in - shift - layer.f_out)
    offset = (layer.bias.astype(np.float64) * 2.0 ** -shift + 0.5) * 2.0 ** -layer.f_out
    n = layer.out_channels
    z = g.op("Mul", [acc, g.const(f"{base}/mult", scale.reshape(n, 1, 1))], f"{base}/scale")
    z = g.op("Add", [z, g.const(f"{base}/bias", offset.reshape(n, 1, 1))], f"{base}/bias_add")
    return g.relu(g.quant(z, layer.f_out, numerics.ACT_BITS, base), layer.relu, base)


def _rescale(g: _Graph, x: str, f_from: int, f_to: int, base: str) -> str:
    """numerics.rescale: exact when the grid gets finer, a rounding right shift when coarser."""
    if f_to >= f_from:
        return x
    return g.round_to(x, f_to, 32, base)


def _shortcut(g: _Graph, node, x: str, c_in: int) -> str:
    a = node.attrs
    before, after, s = int(a["pad_before"]), int(a["pad_after"]), int(a["stride"])
    w = np.zeros((c_in + before + after, c_in, 1, 1), np.float32)
    w[np.arange(c_in) + before, np.arange(c_in)] = 1.0
    weights = g.quant(g.const(f"{node.name}/select", w), 0, 2, f"{node.name}/weight_quant", narrow=True,
                      rounding="ROUND")
    return g.op("Conv", [x, weights], node.name, kernel_shape=[1, 1], strides=[s, s])


def _avgpool(g: _Graph, node, x: str, hw: tuple[int, int]) -> str:
    a = node.attrs
    if a.get("output_size"):
        h, w = hw
        oh, ow = a["output_size"]
        if h % oh or w % ow:
            raise UnsupportedLayerError(f"node {node.name!r}: adaptive average pooling {h}x{w} -> {oh}x{ow} "
                                        f"has unequal cells; ONNX has no such op")
        if (oh, ow) == (1, 1):
            return g.op("GlobalAveragePool", [x], node.name)
        return g.op("AveragePool", [x], node.name, kernel_shape=[h // oh, w // ow], strides=[h // oh, w // ow])
    if a.get("kernel") is None:
        return g.op("GlobalAveragePool", [x], node.name)
    k, s = int(a["kernel"]), int(a.get("stride") or a["kernel"])
    return g.op("AveragePool", [x], node.name, kernel_shape=[k, k], strides=[s, s])


def _shapes(artifact: Artifact) -> dict[str, tuple]:
    """(C, H, W) or (F,) of every node's output, from one reference run on a zero image."""
    from ..reference.network import run
    _, trace = run(artifact, np.zeros((1, *artifact.input_shape), np.float32), trace=True, normalized=True)
    return {k: tuple(int(d) for d in v.shape[1:]) for k, v in trace.items()}


def export_qonnx(artifact: Artifact, path) -> Path:
    """Write the QONNX model of ``artifact`` to ``path`` (atomically)."""
    path = Path(path)
    atomic_write_bytes(path, to_qonnx(artifact).SerializeToString())
    return path


def run_qonnx(model, images: np.ndarray, trace: bool = False, input_name: str = INPUT, output_name: str = OUTPUT):
    """Logits of normalised float32 images from qonnx's own executor (``execute_onnx``); with
    trace=True also every tensor of the graph. ``model``: a path or a ModelProto."""
    try:
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx
    except ModuleNotFoundError as e:
        raise ConfigError("running a QONNX model needs qonnx: pip install 'pesto[qonnx]'") from e
    from qonnx.transformation.infer_shapes import InferShapes
    wrapper = ModelWrapper(os.fspath(model) if isinstance(model, (str, os.PathLike)) else model)
    # qonnx's executor wants every shape concrete: this batch for the symbolic one
    for v in (*wrapper.graph.input, *wrapper.graph.output):
        dim = v.type.tensor_type.shape.dim[0]
        if dim.dim_param:
            dim.dim_value = len(images)
    wrapper = wrapper.transform(InferShapes())
    ctx = execute_onnx(wrapper, {input_name: np.ascontiguousarray(images, dtype=np.float32)},
                       return_full_exec_context=trace)
    return (ctx[output_name], ctx) if trace else ctx[output_name]


def compare_with_reference(artifact: Artifact, model, images: np.ndarray) -> dict:
    """qonnx's executor against the integer reference on normalised ``images``: logits error,
    top-1 agreement (percent) and, per int16 tensor, how many values differ (by how many LSB)."""
    from ..reference.network import run
    want, want_trace = run(artifact, images, trace=True, normalized=True)
    got, ctx = run_qonnx(model, images, trace=True)
    by_name = {n.name: n for n in artifact.nodes}
    values = total = 0
    worst = 0
    layers = {}
    names = _tensor_names(artifact)
    for name, tensor in names.items():
        node = by_name[name]
        if node.frac is None or tensor not in ctx:
            continue
        q = np.floor(ctx[tensor].astype(np.float64) * 2.0 ** node.frac + 0.5).astype(np.int64)
        diff = np.abs(q - want_trace[name].astype(np.int64))
        layers[name] = int((diff > 0).sum())
        values += int((diff > 0).sum())
        total += diff.size
        worst = max(worst, int(diff.max(initial=0)))
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    return {"images": int(len(images)), "int16_values": total, "int16_mismatches": values,
            "int16_mismatch_fraction": values / total if total else 0.0, "int16_max_lsb_difference": worst,
            "mismatches_per_tensor": {k: v for k, v in layers.items() if v},
            "max_abs_logit_error": float(err.max()), "logit_range": float(np.abs(want).max()),
            "top1_agreement": float(100 * (got.argmax(1) == want.argmax(1)).mean())}


def compare_layers(artifact: Artifact, images: np.ndarray) -> list[dict]:
    """Each accelerated layer alone in qonnx's executor (``layer_to_qonnx``), fed the reference's
    own input for normalised ``images``: per layer, its outputs, how many differ from the
    reference and by how many LSB at most."""
    from ..reference.network import run
    _, trace = run(artifact, images, trace=True, normalized=True)
    rows = []
    for node in artifact.nodes:
        if node.op != "tconv":
            continue
        layer, xin = node.layer, trace[node.inputs[0]]
        y = run_qonnx(layer_to_qonnx(layer, *xin.shape[2:]), numerics.dequantize(xin, layer.f_in),
                      input_name="x", output_name="y")
        diff = np.abs(np.floor(y.astype(np.float64) * 2.0 ** layer.f_out + 0.5).astype(np.int64)
                      - trace[node.name].astype(np.int64))
        rows.append({"layer": node.name, "outputs": int(diff.size), "mismatches": int((diff > 0).sum()),
                     "max_lsb": int(diff.max(initial=0))})
    return rows


def _tensor_names(artifact: Artifact) -> dict[str, str]:
    """artifact node -> the QONNX tensor holding its value (replays to_qonnx's naming)."""
    model = to_qonnx(artifact)
    produced = {o for n in model.graph.node for o in n.output}
    out = {}
    for node in artifact.nodes:
        if node.op == "dequantize":
            continue
        candidates = [node.name, f"{node.name}/relu"]
        hits = [c for c in candidates if c in produced]
        if node.name == artifact.output:
            out[node.name] = OUTPUT
        elif hits:
            out[node.name] = hits[-1]
    return out
