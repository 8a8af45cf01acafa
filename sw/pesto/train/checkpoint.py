"""Checkpoints: one dict of plain types and tensors, written atomically, loaded without pickle.

Layout (format "pesto-checkpoint", version 1)::

    format, version
    model       {name, in_channels, num_classes, input_size}      -> pesto.models.build_model
    quant       {mode: fp|tern|prune|naive|wpc, cg, keep_first_last, cg_overrides}
    data        {dataset, mean, std}   per-channel normalisation the deployment must apply:
                                       x = (pixel / 255 - mean[c]) / std[c]
                [classes]              the labels trained on (relabelled 0..k-1), when not all
    state_dict  the model's state dict (ternary layers keep their latent float weight under
                '<layer>.parametrizations.weight.original'; the codes are recomputed from it)
    state_sha256  checksum of the state dict's tensors (catches bit flips torch.load misses)
    epoch       epochs completed
    optimizer, scheduler   state to resume (scheduler: {milestones, gamma, base_lr, last_epoch})
    history     one dict per epoch: loss, acc, lr, sparsity metrics, WPC thresholds
    args        the training options (JSON-able)

Load with ``load_checkpoint`` (torch.load(weights_only=True) only) and rebuild the network with
``model_from_checkpoint``.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..errors import CheckpointError, ConfigError
from ..util import atomic_write_bytes

FORMAT = "pesto-checkpoint"
VERSION = 1
MODES = ("fp", "tern", "prune", "naive", "wpc")
TERNARY_MODES = ("tern", "naive", "wpc")
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
                    history: list | None = None, args: Any = None) -> dict:
    if quant.get("mode") not in MODES:
        raise ConfigError(f"unknown mode {quant.get('mode')!r}; choose one of {', '.join(MODES)}")
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    if args is not None and not isinstance(args, dict):
        args = vars(args)
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": {k: _plain(model_cfg[k]) for k in ("name", "in_channels", "num_classes", "input_size")},
        "quant": {"mode": quant["mode"], "cg": int(quant.get("cg", 16)),
                  "keep_first_last": bool(quant.get("keep_first_last", True)),
                  "cg_overrides": {str(k): int(v) for k, v in (quant.get("cg_overrides") or {}).items()}},
        "data": {"dataset": str(data["dataset"]), "mean": [float(v) for v in data["mean"]],
                 "std": [float(v) for v in data["std"]],
                 **({"classes": [int(c) for c in data["classes"]]} if data.get("classes") else {})},
        "state_dict": state,
        "state_sha256": state_checksum(state),
        "epoch": int(epoch),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": _plain(scheduler),
        "history": _plain(list(history or [])),
        "args": _plain(args or {}),
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


def torch_load(path: str | os.PathLike, what: str = "checkpoint"):
    """``torch.load(path, weights_only=True)``, the only way pesto reads a torch file; every failure
    is a CheckpointError. A file refused because it holds Python objects says so, with torch's
    explanation in full (it names the object)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist" if not path.exists() else
                              f"{what} {path} is not a regular file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()   # torch's message, without its terminal bold
        found = re.findall(r"GLOBAL ([\w.]+)", text)
        if found:
            raise CheckpointError(
                f"{what} {path} was refused: it holds Python objects beyond tensors and plain values (it "
                f"references {', '.join(dict.fromkeys(found))}), which pesto never unpickles (a file `pesto train` "
                f"wrote never holds any). Do not load it with weights_only=False unless you wrote it yourself. "
                f"torch.load(weights_only=True) says:\n{text}") from e
        why = re.search(r"WeightsUnpickler error:\s*(.+)", text)
        raise CheckpointError(f"{what} {path} is corrupt, truncated or not a PyTorch file (loaded safely with "
                              f"weights_only=True): {why.group(1).strip() if why else text}") from e
    except Exception as e:  # zip/pickle errors of every kind mean the same thing to the user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{what} {path} is corrupt, truncated or not a PyTorch file "
                              f"(loaded safely with weights_only=True): {first[:300]}") from e


def open_checked(path: Path, fmt: str, version: int, required, maker: str, alternative: str = "") -> dict:
    """The dict of format ``fmt`` in ``path``, its version and ``required`` keys checked (CheckpointError
    naming the problem; ``maker`` is the command that writes such files, e.g. "pesto train")."""
    kind = "pesto" if maker == "pesto train" else maker
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; make one with `{maker}` {alternative}".rstrip())
    ckpt = torch_load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        raise CheckpointError(f"{path} is not a {kind} checkpoint (no format={fmt!r} key); `{maker}` writes them")
    if ckpt.get("version") != version:
        raise CheckpointError(f"{path}: {kind} checkpoint version {ckpt.get('version')!r} is not supported "
                              f"(this pesto reads version {version}); re-make it or upgrade pesto")
    missing = [k for k in required if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}; it is incomplete")
    return ckpt


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read and validate a checkpoint; every problem is a CheckpointError that says what is wrong."""
    path = Path(path)
    ckpt = open_checked(path, FORMAT, VERSION, REQUIRED, "pesto train",
                        "or use the embedded one (pesto.train.checkpoint.default_checkpoint_path())")
    check_fields(ckpt, str(path))
    want = ckpt.get("state_sha256")
    if want is not None and state_checksum(ckpt["state_dict"]) != want:
        raise CheckpointError(f"{path}: the weights do not match their checksum; the file is corrupt "
                              f"(re-copy it or re-train)")
    ckpt["path"] = str(path)
    return ckpt


def check_fields(ckpt: dict, where: str = "checkpoint") -> None:
    """Every field a checkpoint holds, of the type and range make_checkpoint writes."""
    def bad(field: str, want: str, got) -> CheckpointError:
        shown = repr(got) if isinstance(got, (bool, int, float, str, type(None))) else type(got).__name__
        return CheckpointError(f"{where}: field {field} must be {want}, got {shown[:80]}; the file is not one "
                               f"`pesto train` wrote (or it was edited)")

    def is_int(v, lo=0):
        return isinstance(v, int) and not isinstance(v, bool) and v >= lo

    def obj(field: str, v, keys=()):
        if not isinstance(v, dict):
            raise bad(field, "a dict", v)
        for k in keys:
            if k not in v:
                raise CheckpointError(f"{where}: field {field} lacks {k!r}; it is incomplete")
        return v

    m = obj("model", ckpt["model"], ("name", "in_channels", "num_classes", "input_size"))
    if not isinstance(m["name"], str):
        raise bad("model.name", "a string", m["name"])
    for k in ("in_channels", "num_classes", "input_size"):
        if not is_int(m[k], 1):
            raise bad(f"model.{k}", "a positive integer", m[k])
    q = obj("quant", ckpt["quant"], ("mode",))
    if q["mode"] not in MODES:
        raise CheckpointError(f"{where}: unknown quantization mode {q['mode']!r}")
    if "cg" in q and not is_int(q["cg"], 1):
        raise bad("quant.cg", "a positive integer", q["cg"])
    if "keep_first_last" in q and not isinstance(q["keep_first_last"], bool):
        raise bad("quant.keep_first_last", "true or false", q["keep_first_last"])
    overrides = obj("quant.cg_overrides", q.get("cg_overrides") or {})
    if not all(isinstance(k, str) and is_int(v, 1) for k, v in overrides.items()):
        raise bad("quant.cg_overrides", "a dict of layer name -> positive integer", overrides)
    d = obj("data", ckpt["data"], ("dataset", "mean", "std"))
    if not isinstance(d["dataset"], str):
        raise bad("data.dataset", "a string", d["dataset"])
    for k in ("mean", "std"):
        v = d[k]
        if not (isinstance(v, (list, tuple)) and v and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                           and math.isfinite(x) for x in v)):
            raise bad(f"data.{k}", "a non-empty list of finite numbers", v)
    if len(d["mean"]) != len(d["std"]) or min(d["std"]) <= 0:
        raise CheckpointError(f"{where}: data.mean/std must have one value per channel each, std > 0; got "
                              f"{d['mean']} / {d['std']}")
    state = obj("state_dict", ckpt["state_dict"])
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise bad("state_dict", "a dict of name -> tensor", state)
    if not is_int(ckpt["epoch"]):
        raise bad("epoch", "a non-negative integer", ckpt["epoch"])
    for key, kind in (("state_sha256", str), ("optimizer", dict), ("scheduler", dict), ("history", list),
                      ("args", dict)):
        if ckpt.get(key) is not None and not isinstance(ckpt[key], kind):
            raise bad(key, f"a {kind.__name__} (or absent)", ckpt[key])
    if not all(isinstance(h, dict) for h in ckpt.get("history") or []):
        raise bad("history", "a list of dicts, one per epoch", ckpt["history"])


def build_from_config(model_cfg: dict, quant: dict, model: nn.Module | None = None) -> nn.Module:
    """The untrained architecture a checkpoint describes (ternarized for tern/naive/wpc); with
    ``model`` (a user's own nn.Module), that model, quantized the same way."""
    from ..models import build_model
    from ..quant import is_ternary, ternarize_model
    if model is None:
        model = build_model(model_cfg["name"], in_channels=int(model_cfg["in_channels"]),
                            num_classes=int(model_cfg["num_classes"]), input_size=int(model_cfg["input_size"]))
    if quant["mode"] in TERNARY_MODES and not any(is_ternary(m) for m in model.modules()):
        ternarize_model(model, cg=int(quant["cg"]), keep_first_last=bool(quant["keep_first_last"]),
                        cg_overrides=dict(quant.get("cg_overrides") or {}))
    return model


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
