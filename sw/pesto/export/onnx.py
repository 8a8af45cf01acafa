"""ONNX export of the compressed model: ternary layers as float weights alpha * codes, host
layers in float, BN kept as is. onnxruntime runs it; ``check_onnx`` compares it with PyTorch.

The ONNX graph is the float model the integer pipeline is measured against, in a form other
toolchains read (docs/export.md: FINN via QONNX, hls4ml).
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..errors import ConfigError
from ..quant import ternary_layers
from ..util import atomic_write_bytes

OPSET = 17
# onnxruntime vs PyTorch on the same float32 model: different kernels, different summation
# order. Both are float32, so agreement is ~1e-6 relative; the stated tolerance leaves margin.
ATOL = 1e-4
RTOL = 1e-4


def shortcut_as_conv(m: nn.Module) -> nn.Conv2d:
    """An option-A shortcut (subsample by stride, zero-pad channels) as the 1x1 conv of stride s
    with 0/1 weights that computes exactly the same: ONNX gets a Conv, not Slice + Pad (which
    hls4ml refuses)."""
    c_in, c_out = int(m.in_channels), int(m.out_channels)
    conv = nn.Conv2d(c_in, c_out, 1, stride=int(m.stride), bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[torch.arange(c_in) + int(m.pad_before), torch.arange(c_in), 0, 0] = 1.0
    return conv


def plain_float_model(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ternarized conv/linear layers are plain modules holding the
    ternary forward's weight alpha * codes (no parametrization left to trace), and whose option-A
    shortcuts are their 1x1 convs (``shortcut_as_conv``)."""
    from .graph import is_shortcut_a
    out = copy.deepcopy(model).eval()
    for name, module in list(out.named_modules()):
        if name and is_shortcut_a(module) and hasattr(module, "in_channels"):
            parent_name, _, child = name.rpartition(".")
            setattr(out.get_submodule(parent_name) if parent_name else out, child, shortcut_as_conv(module))
    for name, module, _ in ternary_layers(out):
        w_hat = module.weight.detach().clone()   # the parametrized forward's alpha * codes
        if isinstance(module, nn.Conv2d):
            plain = nn.Conv2d(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                              module.padding, module.dilation, module.groups, module.bias is not None,
                              module.padding_mode)
        else:
            plain = nn.Linear(module.in_features, module.out_features, module.bias is not None)
        with torch.no_grad():
            plain.weight.copy_(w_hat)
            if module.bias is not None:
                plain.bias.copy_(module.bias.detach())
        parent_name, _, child = name.rpartition(".")
        setattr(out.get_submodule(parent_name) if parent_name else out, child, plain)
    return out


def export_onnx(model: nn.Module, path, input_shape: tuple[int, int, int], opset: int = OPSET) -> Path:
    """Write the compressed float model to ``path`` (atomically); batch size is dynamic.

    Input "images": normalised float32 (B, C, H, W); output "logits" (B, classes).
    """
    if len(input_shape) != 3:
        raise ConfigError(f"input_shape must be (C, H, W), got {input_shape}")
    plain = plain_float_model(model)
    x = torch.zeros((1, *input_shape), dtype=torch.float32)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the TorchScript exporter's deprecation notice
        torch.onnx.export(plain, (x,), buf, dynamo=False, opset_version=opset, input_names=["images"],
                          output_names=["logits"], dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
    import onnx
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto)
    proto.producer_name = "pesto"
    meta = proto.metadata_props.add()
    meta.key, meta.value = "pesto.description", "ternary layers as alpha*codes float weights; input normalised"
    path = Path(path)
    atomic_write_bytes(path, proto.SerializeToString())
    return path


def run_onnx(path: str | os.PathLike, images: np.ndarray) -> np.ndarray:
    """Logits of normalised float32 images from onnxruntime (CPU)."""
    import onnxruntime as ort
    sess = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    return sess.run(["logits"], {"images": np.ascontiguousarray(images, dtype=np.float32)})[0]


@torch.no_grad()
def check_onnx(path, model: nn.Module, images: np.ndarray, atol: float = ATOL, rtol: float = RTOL) -> dict:
    """Run ``images`` (normalised) through onnxruntime and the PyTorch model; report the error."""
    want = model.eval()(torch.from_numpy(np.asarray(images, dtype=np.float32))).numpy()
    got = run_onnx(path, images)
    err = np.abs(got - want)
    tol = atol + rtol * np.abs(want)
    return {"images": int(len(images)), "max_abs_error": float(err.max()),
            "max_rel_error": float((err / np.maximum(np.abs(want), 1e-12)).max()),
            "within_tolerance": bool((err <= tol).all()), "atol": atol, "rtol": rtol,
            "top1_agreement": float(100 * (got.argmax(1) == want.argmax(1)).mean())}   # percent
