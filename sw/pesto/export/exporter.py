"""export_model: a trained (or plain) PyTorch model -> the accelerator artifact.

Steps, each checked:
 1. load: a `pesto train` checkpoint (path or dict) or an nn.Module; refuse NaN/inf weights;
    ternarize a plain model on the spot (with a warning: accuracy needs training).
 2. capture: trace with torch.fx and run the calibration images (graph.capture).
 3. build: fold BN and the ternary alpha into each accelerated layer's integer output stage,
    give every int16 tensor a power-of-two format from its calibrated range, prove the
    accumulator cannot overflow, keep the first/last layers and pooling on the host.
 4. verify: run the integer reference on some calibration images against the float model.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import time
import warnings
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from .. import __version__, geometry, numerics
from ..artifact import Artifact, Node
from ..errors import CheckpointError, ConfigError, ExportError, UnsupportedLayerError
from ..ir import SUPPORTED_KERNELS, SUPPORTED_STRIDES, TernaryConv
from ..quant import is_ternary, latent_weight, ternarize, ternarize_model, ternary_layers
from ..validate import check_float, check_int, unit_images
from . import graph as G

DEFAULT_CALIBRATION = 256
DEFAULT_VERIFY = 32            # calibration images the integer pipeline is checked on
DEFAULT_MIN_AGREEMENT = 90.0   # percent: below this top-1 agreement with the float model the export fails
NORMALISATIONS = ("none",)     # the explicit choice for a model that carries no mean/std


class UntrainedWarning(UserWarning):
    """A plain model was ternarized at export time: its accuracy needs ternary training."""


def load_model(source, cg: int | None = None) -> tuple[nn.Module, dict]:
    """(ternary model in eval mode, info) from a checkpoint path/dict or an nn.Module.

    A model without ternary layers is ternarized on the spot (on a copy, with cg or 16; the first
    and last conv/linear stay in float) with an UntrainedWarning. info: name, source, quant mode,
    mean/std, dataset and input geometry when the checkpoint knows them. A (model, info) pair
    passes through unchanged.
    """
    if isinstance(source, tuple):
        return source
    if isinstance(source, nn.Module):
        from .foreign import adopt
        model, adopted = adopt(source)   # Brevitas ternary layers keep their codes; torchao is refused
        model, info = model.eval(), {"name": type(source).__name__, "source": "torch.nn.Module", "mode": None}
        if adopted:
            info["mode"] = "brevitas ternary"
    else:
        from ..train.checkpoint import load_checkpoint, model_from_checkpoint
        ckpt = source if isinstance(source, dict) else load_checkpoint(source)
        if not isinstance(ckpt, dict) or ckpt.get("format") != "pesto-checkpoint":
            raise CheckpointError("not a pesto checkpoint (no format='pesto-checkpoint'); pass a checkpoint "
                                  "written by `pesto train` or an nn.Module")
        _check_finite(ckpt["state_dict"], ckpt.get("path", "checkpoint"), CheckpointError)
        model = model_from_checkpoint(ckpt)
        m, d = ckpt["model"], ckpt["data"]
        info = {"name": m["name"], "source": str(ckpt.get("path", "checkpoint dict")),
                "mode": ckpt["quant"]["mode"], "mean": d["mean"], "std": d["std"],
                "dataset": d["dataset"], "in_channels": m["in_channels"], "input_size": m["input_size"],
                "num_classes": m["num_classes"], "epoch": ckpt.get("epoch"),
                "state_sha256": ckpt.get("state_sha256")}
    _check_finite(model.state_dict(), info["source"])
    if not ternary_layers(model):
        warnings.warn(f"{info['name']}: no ternary layers; ternarizing every conv/linear except the first "
                      f"and last now. Accuracy needs ternary training (`pesto train --mode wpc`).",
                      UntrainedWarning, stacklevel=3)
        model = ternarize_model(copy.deepcopy(model), cg=cg or 16).eval()
        info["mode"] = "ternarized at export"
    return model, info


def _check_finite(tensors: dict, where: str, err=ConfigError) -> None:
    for key, t in tensors.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not torch.isfinite(t).all():
            raise err(f"{where}: weight {key!r} holds NaN or infinite values; the model is broken "
                      f"(use an earlier checkpoint or retrain with a lower learning rate)")


def export_model(model_or_checkpoint, calib_images=None, cg: int | None = None, act_bits: int = 16,
                 frac_bits: int | None = None, headroom_bits: int = 1, mean=None, std=None,
                 num_calibration: int = DEFAULT_CALIBRATION, batch_size: int = 64, verify: int = DEFAULT_VERIFY,
                 progress: bool = False, name: str | None = None, normalisation: str | None = None,
                 min_agreement: float = DEFAULT_MIN_AGREEMENT, values: dict | None = None) -> Artifact:
    """Export a model to an Artifact (save it with ``pesto.artifact.save``).

    model_or_checkpoint: a `pesto train` checkpoint (path or dict), an nn.Module (ternarized on
        the spot if it has no ternary layers) or the (model, info) pair ``load_model`` returns.

    calib_images: raw images (B, C, H, W): uint8 pixels, other integers holding pixels 0..255, or
        floats in [0, 1] (``pesto.validate.unit_images``); None: Fashion-MNIST training images.
    mean, std: the input normalisation per channel, x = (pixel / 255 - mean) / std. Default: the
        checkpoint's. A model that carries none (a bare nn.Module) needs them, or
        normalisation="none" to say that it takes pixel / 255 as it is (mean 0, std 1).
    cg: PE-group size for every accelerated layer (default: the size each layer was trained with).
    act_bits: significant bits the calibrated range may use inside the int16 container (<= 16;
        fewer bits trade precision for saturation headroom, to study bit-width sensitivity).
    frac_bits: one fixed format for every int16 tensor instead of calibrated ones.
    headroom_bits: extra bits of range above the calibration maximum (unseen images may exceed it).
    verify: run the integer reference on this many calibration images against the float model;
        the export fails (ExportError) when their top-1 agreement is below ``min_agreement``
        (in percent, default 90; 0 records the agreement without a threshold).
    values: a dict to fill with {op name of graph.capture: name of the node holding its value}
        (how pesto.transfer finds the artifact node of a backbone value).
    """
    t0 = time.perf_counter()
    if cg is not None:
        geometry.check_cg(cg, None, "export")
    act_bits = check_int(act_bits, "act_bits", 1, numerics.ACT_BITS)
    if frac_bits is not None:
        frac_bits = check_int(frac_bits, "frac_bits", numerics.FRAC_MIN, numerics.FRAC_MAX)
    headroom_bits = check_int(headroom_bits, "headroom_bits", 0, numerics.ACT_BITS - 1)
    num_calibration = check_int(num_calibration, "num_calibration", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    verify = check_int(verify, "verify", 0)
    min_agreement = check_float(min_agreement, "min_agreement (percent)", 0.0, 100.0)
    if normalisation is not None and normalisation not in NORMALISATIONS:
        raise ConfigError(f"normalisation={normalisation!r}: the only explicit choice is 'none' (the model takes "
                          f"pixel / 255 as it is); give a normalisation as mean= and std=")
    model, info = load_model(model_or_checkpoint, cg)
    model.eval()

    images = _calibration_images(calib_images, info, num_calibration)
    mean, std, rule = _normalisation(images.shape[1], mean, std, normalisation, info)
    norm = torch.from_numpy((images - mean.reshape(1, -1, 1, 1)) / std.reshape(1, -1, 1, 1))
    batches = [norm[i:i + batch_size] for i in range(0, len(norm), batch_size)]
    bar = _bar(progress, len(norm), "calibrating")
    t1 = time.perf_counter()
    ops = G.capture(model, batches, bar)
    if bar is not None:
        bar.close()
    t2 = time.perf_counter()
    builder = _Builder(ops, cg, act_bits, frac_bits, headroom_bits, progress)
    nodes, output = builder.build()
    if values is not None:
        values.update(builder.value)
    num_classes = int(np.prod(next(op for op in ops if op.name == ops[-1].inputs[0]).shape))
    meta = {
        "model": {"name": name or info["name"], "source": info["source"], "quant_mode": info["mode"],
                  "epoch": info.get("epoch"), "dataset": info.get("dataset"),
                  "state_sha256": info.get("state_sha256")},
        "num_classes": num_classes,
        "input": {"shape": list(images.shape[1:]), "layout": "NCHW", "mean": mean.tolist(), "std": std.tolist(),
                  "normalisation": rule},
        "numerics": {"act_bits": numerics.ACT_BITS, "acc_bits": numerics.ACC_BITS, "mult_bits": numerics.MULT_BITS,
                     "shift_max": numerics.SHIFT_MAX, "bias_bits": numerics.BIAS_BITS,
                     "rounding": "round half up", "saturation": "int16"},
        "export": {"pesto_version": __version__, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                   "cg": cg, "act_bits": act_bits, "frac_bits": frac_bits, "headroom_bits": headroom_bits,
                   "calibration_images": int(len(images)), "host_fallback": builder.host_fallback},
    }
    artifact = Artifact(nodes, output, meta)
    t3 = time.perf_counter()
    if verify:
        v = meta["export"]["verification"] = _verify(model, artifact, images[:verify], norm[:verify])
        v["min_agreement"] = min_agreement
        if v["top1_agreement"] < min_agreement:
            raise ExportError(
                f"the exported integer pipeline agrees with the float model on only {v['top1_agreement']:.1f} % "
                f"of {v['images']} calibration images (threshold {min_agreement:g} %; max |logit error| "
                f"{v['max_abs_logit_error']:.3g} of a logit range {v['logit_range']:.3g}): the fixed-point formats "
                f"destroy the model (act_bits={act_bits}, headroom_bits={headroom_bits}, frac_bits={frac_bits}). "
                f"Export with the default formats, or lower the threshold on purpose (--min-agreement)")
    t4 = time.perf_counter()
    meta["export"]["seconds"] = round(t4 - t0, 3)
    meta["export"]["timing_s"] = {"load": round(t1 - t0, 3), "calibration": round(t2 - t1, 3),
                                  "build": round(t3 - t2, 3), "verify": round(t4 - t3, 3)}
    return artifact


def _normalisation(c: int, mean, std, normalisation, info: dict):
    """(mean, std, rule) per channel: given, the checkpoint's, or explicitly none; never guessed."""
    if (mean is None) != (std is None):
        raise ConfigError("give the input normalisation as both mean= and std= (one value per channel)")
    if mean is None and normalisation == "none":
        mean, std = [0.0] * c, [1.0] * c
        rule = "none: x = pixel / 255"
    elif mean is None and info.get("mean") is not None:
        mean, std = info["mean"], info["std"]
        rule = "x = (pixel / 255 - mean[c]) / std[c]"
    elif mean is None:
        raise ConfigError(
            f"{info.get('name', 'the model')} carries no input normalisation (it is not a `pesto train` checkpoint): "
            f"pass the mean and std per channel it was trained with (mean=, std=; --mean/--std), e.g. Fashion-MNIST "
            f"0.2860/0.3530, or normalisation='none' (--normalisation none) if it takes pixel / 255 as it is")
    else:
        if normalisation is not None:
            raise ConfigError("give either mean=/std= or normalisation='none', not both")
        rule = "x = (pixel / 255 - mean[c]) / std[c]"
    try:
        mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        std = np.asarray(std, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ConfigError(f"mean/std must be numbers, got mean={mean!r} std={std!r}") from None
    if mean.size == 1 and c > 1:
        mean, std = np.repeat(mean, c), np.repeat(std, c)
    if mean.size != c or std.size != c or not (np.isfinite(mean).all() and np.isfinite(std).all()) \
            or (std <= 0).any():
        raise ConfigError(f"mean/std must be finite, one value per input channel ({c}), std > 0; "
                          f"got mean={mean.tolist()} std={std.tolist()}")
    return mean.astype(np.float32), std.astype(np.float32), rule


def _bar(progress: bool, total: int, desc: str):
    if not progress:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="img")


def _calibration_images(images, info: dict, n: int) -> np.ndarray:
    if images is None:
        images = default_calibration_images(n, info)
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[:, None]   # (B, H, W): single-channel images
    x = unit_images(x[:n] if x.ndim == 4 else x, "calibration images")
    want_c = info.get("in_channels")
    if want_c is not None and x.shape[1] != want_c:
        raise ConfigError(f"calibration images have {x.shape[1]} channels, the model takes {want_c}")
    return x


def default_calibration_images(n: int, info: dict) -> np.ndarray:
    """The first ``n`` Fashion-MNIST training images, uint8 (n, 1, 28, 28)."""
    dataset = info.get("dataset") or "fashion-mnist"
    if dataset != "fashion-mnist" or info.get("in_channels", 1) != 1 or info.get("input_size", 28) != 28:
        raise ConfigError(f"{info.get('name')}: no default calibration images for a {dataset} model with "
                          f"{info.get('in_channels')}x{info.get('input_size')} inputs; pass calibration "
                          f"images (calib_images=..., or --calib-data FILE.npy)")
    from ..data import load_splits
    train, _ = load_splits("fashion-mnist", augment=False)
    return train.images[:n].numpy()


class _Builder:
    """Turns the captured op list into artifact nodes (see the module docstring, step 3)."""

    def __init__(self, ops, cg, act_bits, frac_bits, headroom_bits, progress):
        self.ops = {op.name: op for op in ops}
        self.order = ops
        self.cg, self.act_bits, self.fixed, self.headroom = cg, act_bits, frac_bits, headroom_bits
        self.progress = progress
        self.nodes: list[Node] = []
        self.value: dict[str, str] = {}      # op name -> node name holding its value (natural domain)
        self.cache: dict[tuple[str, str], str] = {}
        self.frac_of: dict[str, int | None] = {}
        self.fused: set[str] = set()
        self.host_fallback: list[str] = []

    # -- formats ----------------------------------------------------------------------------
    def frac_for(self, max_abs: float, where: str) -> int:
        if self.fixed is not None:
            return self.fixed
        try:
            f = numerics.choose_frac_bits(max_abs)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
        return max(f - self.headroom - (numerics.ACT_BITS - self.act_bits), numerics.FRAC_MIN)

    def emit(self, node: Node) -> str:
        self.nodes.append(node)
        self.frac_of[node.name] = node.frac
        return node.name

    def get(self, op_name: str, domain: str) -> str:
        """The node holding op ``op_name``'s value in ``domain`` ("int" or "float"), converting once."""
        src = self.value[op_name]
        have = "int" if self.frac_of[src] is not None else "float"
        if have == domain:
            return src
        key = (src, domain)
        if key not in self.cache:
            if domain == "int":
                op = self.ops[self.src_op[src]]
                f = self.frac_for(op.max_abs, f"tensor {src!r}")
                self.cache[key] = self.emit(Node(f"{src}.q", "quantize", [src], frac=f))
            else:
                self.cache[key] = self.emit(Node(f"{src}.dq", "dequantize", [src]))
        return self.cache[key]

    def domain(self, op_name: str) -> str:
        return "int" if self.frac_of[self.value[op_name]] is not None else "float"

    # -- fusion -------------------------------------------------------------------------------
    def follow(self, op, kind):
        """The op's single user if it is of ``kind`` (a fusable BN or ReLU), else None."""
        if len(op.users) == 1 and self.ops[op.users[0]].kind == kind:
            return self.ops[op.users[0]]
        return None

    def fuse_tail(self, op, allow_bn: bool):
        """(bn op or None, relu?, last op of the fused chain)."""
        bn = self.follow(op, "bn") if allow_bn else None
        last = bn or op
        relu = self.follow(last, "relu")
        for o in (bn, relu):
            if o is not None:
                self.fused.add(o.name)
        return bn, relu is not None, relu or last

    # -- build --------------------------------------------------------------------------------
    def build(self) -> tuple[list[Node], str]:
        self.src_op: dict[str, str] = {}
        items = self.order
        if self.progress:
            from tqdm import tqdm
            items = tqdm(items, desc="exporting", unit="op")
        output = None
        for op in items:
            if op.name in self.fused:
                continue
            if op.kind == "output":
                output = self.get(op.inputs[0], "float")
                continue
            handler = getattr(self, f"_op_{op.kind}")
            name, last = handler(op)
            self.src_op[name] = last.name
            self.value[op.name] = name
            if last is not op:
                self.value[last.name] = name
        return self.nodes, output

    def _op_input(self, op):
        return self.emit(Node("input", "input", attrs={"shape": list(op.shape)})), op

    def _op_identity(self, op):
        return self.value[op.inputs[0]], op

    def _op_relu(self, op):
        src = self.value[op.inputs[0]]
        return self.emit(Node(op.name, "relu", [src], frac=self.frac_of[src])), op

    def _op_bn(self, op):
        raise UnsupportedLayerError(
            f"layer {op.name!r} (BatchNorm2d) does not directly follow a conv whose only user it is; "
            f"only conv -> BN can be folded")

    def _op_conv(self, op):
        m: nn.Conv2d = op.module
        bn, relu, last = self.fuse_tail(op, allow_bn=True)
        scale, shift = _bn_affine(m, bn)
        kernel = tuple(m.kernel_size)
        pad = m.padding if isinstance(m.padding, tuple) else None
        where = f"layer {op.name!r}"
        if pad is None or m.groups != 1 or tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros":
            raise UnsupportedLayerError(f"{where} (Conv2d): groups={m.groups}, dilation={m.dilation}, "
                                        f"padding={m.padding!r}, padding_mode={m.padding_mode!r} are not "
                                        f"supported; use a dense conv with zero padding")
        accel = (is_ternary(m) and kernel in SUPPORTED_KERNELS and m.stride[0] == m.stride[1]
                 and m.stride[0] in SUPPORTED_STRIDES and pad[0] == pad[1] and 0 <= pad[0] <= kernel[0] // 2)
        if is_ternary(m) and not accel:
            self.host_fallback.append(op.name)
            warnings.warn(f"{where}: kernel {kernel}, stride {m.stride}, padding {pad} does not fit the "
                          f"engine ({SUPPORTED_KERNELS}, strides {SUPPORTED_STRIDES}); it runs on the host in float")
        if not accel:
            w = m.weight.detach().double() * scale.view(-1, 1, 1, 1)
            if m.stride[0] != m.stride[1] or pad[0] != pad[1] or kernel[0] != kernel[1]:
                raise UnsupportedLayerError(f"{where} (Conv2d): non-square kernel/stride/padding on the host")
            src = self.get(op.inputs[0], "float")
            return self.emit(Node(op.name, "conv", [src], attrs={"stride": m.stride[0], "padding": pad[0],
                                                                  "relu": relu},
                                  arrays={"weight": w.float().numpy(), "bias": shift.float().numpy()})), last
        codes, alpha = ternarize(latent_weight(m))
        src = self.get(op.inputs[0], "int")
        f_in = self.frac_of[src]
        f_out = self.frac_for(last.max_abs, where)
        cg = self.cg or next(p.cg for p in m.parametrizations.weight if hasattr(p, "cg"))
        n, c, kh, kw = codes.shape
        numerics.check_fan_in(c, kh, kw, where)
        gain = float(alpha) * scale.numpy()
        # a pruned-away output channel (all codes zero) outputs its bias alone; its BN gain may be
        # huge (running_var -> 0) and must not break the folding
        gain[~codes.reshape(n, -1).any(dim=1).numpy()] = 0.0
        mult, sh, bias = numerics.fold_output_stage(gain, shift.numpy(), f_in, f_out)
        layer = TernaryConv(op.name, codes.numpy(), mult, sh, bias, stride=m.stride[0], padding=pad[0],
                            cg=int(cg), relu=relu, f_in=f_in, f_out=f_out)
        nnz = np.count_nonzero(layer.codes.reshape(n, -1), axis=1).max(initial=0)
        node = Node(op.name, "tconv", [src], frac=f_out, layer=layer,
                    attrs={"alpha": float(alpha), "acc_bound_bits": _bound_bits(int(nnz))})
        return self.emit(node), last

    def _op_linear(self, op):
        m: nn.Linear = op.module
        _, relu, last = self.fuse_tail(op, allow_bn=False)
        if is_ternary(m):
            self.host_fallback.append(op.name)
        w = m.weight.detach().float().numpy()   # the ternary forward's alpha * codes if ternarized
        b = m.bias.detach().float().numpy() if m.bias is not None else np.zeros(w.shape[0], np.float32)
        src = self.get(op.inputs[0], "float")
        return self.emit(Node(op.name, "linear", [src], attrs={"relu": relu},
                              arrays={"weight": w, "bias": b})), last

    def _op_add(self, op):
        if len(op.inputs) != 2:
            raise UnsupportedLayerError(f"operation {op.name!r}: only the sum of two tensors is supported")
        _, relu, last = self.fuse_tail(op, allow_bn=False)
        dom = "int" if "int" in (self.domain(op.inputs[0]), self.domain(op.inputs[1])) else "float"
        a, b = (self.get(i, dom) for i in op.inputs)
        frac = self.frac_for(last.max_abs, f"add {op.name!r}") if dom == "int" else None
        return self.emit(Node(op.name, "add", [a, b], attrs={"relu": relu}, frac=frac)), last

    def _op_shortcut(self, op):
        m = op.module
        src = self.value[op.inputs[0]]
        return self.emit(Node(op.name, "shortcut", [src], frac=self.frac_of[src],
                              attrs={"stride": int(m.stride), "pad_before": int(m.pad_before),
                                     "pad_after": int(m.pad_after)})), op

    def _op_maxpool(self, op):
        k, s, p = _pool_args(op, "maxpool")
        src = self.value[op.inputs[0]]
        return self.emit(Node(op.name, "maxpool", [src], frac=self.frac_of[src],
                              attrs={"kernel": k, "stride": s, "padding": p})), op

    def _op_avgpool(self, op):
        src = self.get(op.inputs[0], "float")
        in_hw = self.ops[op.inputs[0]].shape[1:]
        out_hw = op.shape[1:]
        if tuple(out_hw) == (1, 1):
            attrs = {"kernel": None, "stride": None}
        elif isinstance(op.module, nn.AdaptiveAvgPool2d) or op.fx_node.target is torch.nn.functional.adaptive_avg_pool2d:
            attrs = {"kernel": None, "stride": None, "output_size": [int(out_hw[0]), int(out_hw[1])]}
        else:
            k, s, p = _pool_args(op, "avgpool")
            if p:
                raise UnsupportedLayerError(f"layer {op.name!r}: padded average pooling is not supported")
            attrs = {"kernel": k, "stride": s}
        return self.emit(Node(op.name, "avgpool", [src], attrs=attrs)), op

    def _op_flatten(self, op):
        if len(op.shape) != 1:
            raise UnsupportedLayerError(f"operation {op.name!r}: only flattening to (batch, features) is "
                                        f"supported, got shape {op.shape}")
        src = self.get(op.inputs[0], "float")
        return self.emit(Node(op.name, "flatten", [src])), op


def _bn_affine(conv: nn.Module, bn) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel (scale, shift) of BN(conv_bias + z), float64."""
    n = conv.weight.shape[0]
    bias = conv.bias.detach().double() if conv.bias is not None else torch.zeros(n, dtype=torch.float64)
    if bn is None:
        return torch.ones(n, dtype=torch.float64), bias
    m: nn.BatchNorm2d = bn.module
    if m.running_mean is None:
        raise UnsupportedLayerError(f"layer {bn.name!r}: BatchNorm2d without running statistics cannot be folded")
    inv = 1.0 / torch.sqrt(m.running_var.double() + m.eps)
    gamma = m.weight.detach().double() if m.weight is not None else torch.ones(n, dtype=torch.float64)
    beta = m.bias.detach().double() if m.bias is not None else torch.zeros(n, dtype=torch.float64)
    scale = gamma * inv
    return scale, beta + (bias - m.running_mean.double()) * scale


def _pool_args(op, kind) -> tuple[int, int, int]:
    if op.module is not None:
        k, s, p = op.module.kernel_size, op.module.stride, op.module.padding
        extra = (getattr(op.module, "dilation", 1), getattr(op.module, "ceil_mode", False))
    else:
        a = list(op.fx_node.args[1:]) + [None] * 3
        kw = op.fx_node.kwargs
        k = kw.get("kernel_size", a[0])
        s = kw.get("stride", a[1]) or k
        p = kw.get("padding", a[2] if a[2] is not None else 0)
        extra = (kw.get("dilation", 1), kw.get("ceil_mode", False))
    vals = []
    for v in (k, s, p):
        if isinstance(v, (tuple, list)):
            if len(set(v)) != 1:
                raise UnsupportedLayerError(f"layer {op.name!r} ({kind}): non-square {v} is not supported")
            v = v[0]
        if not isinstance(v, int):
            raise UnsupportedLayerError(f"layer {op.name!r} ({kind}): parameter {v!r} must be a constant int")
        vals.append(int(v))
    if extra[0] not in (1, (1, 1)) or extra[1]:
        raise UnsupportedLayerError(f"layer {op.name!r} ({kind}): dilation/ceil_mode are not supported")
    return vals[0], vals[1], vals[2]


def _bound_bits(nnz_codes: int) -> int:
    """Bits the worst-case |accumulator| needs: nnz * 2**15 (signed, so +1)."""
    return int(math.ceil(math.log2(max(nnz_codes, 1) * 2 ** (numerics.ACT_BITS - 1) + 1))) + 1


@torch.no_grad()
def _verify(model: nn.Module, artifact: Artifact, images: np.ndarray, norm: torch.Tensor) -> dict[str, Any]:
    """Integer reference vs float model on a few images: top-1 agreement (in percent, as every
    accuracy in pesto) and logit error."""
    from ..reference.network import run
    ref = model(norm).double().numpy()
    got = run(artifact, norm.numpy(), normalized=True).astype(np.float64)
    return {"images": int(len(images)), "top1_agreement": float(100 * (ref.argmax(1) == got.argmax(1)).mean()),
            "max_abs_logit_error": float(np.abs(ref - got).max()),
            "logit_range": float(np.abs(ref).max())}

