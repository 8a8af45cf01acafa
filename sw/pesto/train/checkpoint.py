"""Checkpoints: one dict of plain types and tensors, written atomically, loaded without pickle.

Layout (format "pesto-checkpoint", version 1)::

    format, version
    model       {name, in_channels, num_classes, input_size}      -> pesto.models.build_model
    quant       {mode: fp|tern|prune|naive|wpc|ast, cg, keep_first_last, cg_overrides, + what the
                mode's method needs to rebuild its model (ast: subnets, targets, granularity)}
    data        {dataset, mean, std}   per-channel normalisation the deployment must apply:
                                       x = (pixel / 255 - mean[c]) / std[c]
    state_dict  the model's state dict (ternary layers keep their latent float weight under
                '<layer>.parametrizations.weight.original'; the codes are recomputed from it)
    state_sha256  checksum of the state dict's tensors (catches bit flips torch.load misses)
    epoch       epochs completed
    optimizer, scheduler   state to resume (scheduler: {milestones, gamma, base_lr, last_epoch})
    history     one dict per epoch: loss, acc, lr, sparsity metrics, WPC thresholds (ast: per sub-net)
    args        the training options (JSON-able)
    method      the training method's state for an exact --resume (ast: mask schedule, GC memory, logs)

Load with ``load_checkpoint`` (torch.load(weights_only=True) only) and rebuild the network with
``model_from_checkpoint``.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..errors import CheckpointError, ConfigError
from ..util import atomic_write_bytes
from .methods import get_method, method_names

FORMAT = "pesto-checkpoint"
VERSION = 1
MODES = method_names()                                               # the method registry's modes
TERNARY_MODES = tuple(m for m in MODES if get_method(m).ternary)
QUANT_KEYS = ("mode", "cg", "keep_first_last", "cg_overrides")
REQUIRED = ("model", "quant", "data", "state_dict", "epoch")


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a DistributedDataParallel / DataParallel wrapper."""
    return getattr(model, "module", model)


def state_checksum(state_dict: dict) -> str:
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key]
        h.update(key.encode())
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().contiguous().reshape(-1)
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _plain(x: Any) -> Any:
    """Make options JSON-able (Paths -> str, tuples -> lists) so weights_only loading accepts them."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    return str(x)


def make_checkpoint(model: nn.Module, *, model_cfg: dict, quant: dict, data: dict, epoch: int = 0,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: dict | None = None,
                    history: list | None = None, args: Any = None, method: dict | None = None) -> dict:
    if quant.get("mode") not in method_names():
        raise ConfigError(f"unknown mode {quant.get('mode')!r}; choose one of {', '.join(method_names())}")
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    if args is not None and not isinstance(args, dict):
        args = vars(args)
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": {k: _plain(model_cfg[k]) for k in ("name", "in_channels", "num_classes", "input_size")},
        "quant": {"mode": quant["mode"], "cg": int(quant.get("cg", 16)),
                  "keep_first_last": bool(quant.get("keep_first_last", True)),
                  "cg_overrides": {str(k): int(v) for k, v in (quant.get("cg_overrides") or {}).items()},
                  **{str(k): _plain(v) for k, v in quant.items() if k not in QUANT_KEYS}},
        "data": {"dataset": str(data["dataset"]), "mean": [float(v) for v in data["mean"]],
                 "std": [float(v) for v in data["std"]]},
        "state_dict": state,
        "state_sha256": state_checksum(state),
        "epoch": int(epoch),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": _plain(scheduler),
        "history": _plain(list(history or [])),
        "args": _plain(args or {}),
        **({"method": _plain(method)} if method else {}),
    }


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **fields) -> dict:
    """Write a checkpoint atomically (readers never see half a file). Returns the dict written.

    ``fields`` are make_checkpoint's keyword arguments (model_cfg, quant, data, epoch, ...).
    """
    ckpt = make_checkpoint(model, **fields)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write_bytes(path, buf.getvalue())
    return ckpt


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read and validate a checkpoint; every problem is a CheckpointError that says what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train one with `pesto train` "
                              f"or use the embedded one (pesto.train.checkpoint.default_checkpoint_path())")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # zip/pickle errors of every kind mean the same thing to the user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"checkpoint {path} is corrupt, truncated or not a PyTorch file "
                              f"(loaded safely with weights_only=True): {first[:200]}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a pesto checkpoint (no format={FORMAT!r} key); "
                              f"pesto writes its checkpoints with `pesto train`")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')!r} is not supported "
                              f"(this pesto reads version {VERSION}); re-train or upgrade pesto")
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}; it is incomplete")
    if ckpt["quant"].get("mode") not in method_names():
        raise CheckpointError(f"{path}: unknown quantization mode {ckpt['quant'].get('mode')!r}")
    want = ckpt.get("state_sha256")
    if want is not None and state_checksum(ckpt["state_dict"]) != want:
        raise CheckpointError(f"{path}: the weights do not match their checksum; the file is corrupt "
                              f"(re-copy it or re-train)")
    ckpt["path"] = str(path)
    return ckpt


def build_from_config(model_cfg: dict, quant: dict) -> nn.Module:
    """The untrained architecture a checkpoint describes, with its mode's structure (ternary
    layers for tern/naive/wpc/ast, sub-net masks and BN sets for ast: the method's ``prepare``)."""
    from ..models import build_model
    model = build_model(model_cfg["name"], in_channels=int(model_cfg["in_channels"]),
                        num_classes=int(model_cfg["num_classes"]), input_size=int(model_cfg["input_size"]))
    return get_method(quant["mode"]).prepare(model, quant)


def model_from_checkpoint(ckpt: dict | str | os.PathLike) -> nn.Module:
    """Rebuild the trained network (eval mode) from a checkpoint dict or path."""
    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    where = ckpt.get("path", "checkpoint")
    try:
        model = build_from_config(ckpt["model"], ckpt["quant"])
    except ConfigError as e:
        raise CheckpointError(f"{where}: cannot rebuild its model {ckpt['model']}: {e}") from e
    state = ckpt["state_dict"]
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {'; '.join(shapes[:3])})")
        raise CheckpointError(f"{where}: the state dict does not belong to a {ckpt['model']['name']} "
                              f"in mode {ckpt['quant']['mode']}: " + "; ".join(parts))
    model.load_state_dict(state)
    return model.eval()


def default_checkpoint_path() -> Path:
    """The embedded default model: WPC ResNet-20 (Cg=16) trained on Fashion-MNIST."""
    return Path(__file__).resolve().parent.parent / "assets" / "resnet20_fmnist_wpc.pt"


def subnets_checkpoint_path() -> Path:
    """The embedded dynamic-inference model: AST-GC ResNet-20 (Cg=16) with 3 sub-nets (30/50/70 %
    group sparsity) trained on Fashion-MNIST by the fmnist-ast recipe."""
    return Path(__file__).resolve().parent.parent / "assets" / "resnet20_fmnist_ast.pt"
