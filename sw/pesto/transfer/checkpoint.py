"""Transfer checkpoints: what a `pesto transfer` run learnt, tied to the backbone it learnt on.

Layout (format "pesto-transfer", version 1), written atomically, loaded with weights_only=True::

    format, version
    backbone         {path, state_sha256, model, quant, data}   the identity of the frozen backbone
    backbone_artifact {tconv_sha256, options}   the backbone artifact the connector formats come from:
                     the fingerprint of its accelerated layers and the export options that made it
    method, design, width, num_classes
    connectors       [{op, node, shape, grid, kind, frac}]     where Rep-Net meets the backbone
    backbone_formats {fx node: frac}   the backbone's int16 values, which the forward rounds and saturates
    task             {dataset, classes, input_shape, mean, std, resize}
    state_dict       the TransferNet entries the method trains (model.saved_keys); the frozen backbone
                     is not copied: it is checked against backbone.state_sha256 instead
    state_sha256     checksum of state_dict
    epoch, optimizer, history, memory, args

``build_net(tckpt, backbone_ckpt)`` rebuilds the trained TransferNet and refuses a backbone whose
weights are not the ones the checkpoint names.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..train.checkpoint import (_plain, load_checkpoint, model_from_checkpoint, open_checked, torch_load,
                                state_checksum)
from ..util import atomic_write_bytes
from .model import TransferNet, saved_keys

FORMAT = "pesto-transfer"
VERSION = 1
REQUIRED = ("backbone", "backbone_artifact", "method", "design", "width", "num_classes", "connectors",
            "backbone_formats", "task", "state_dict", "epoch")


def backbone_identity(ckpt: dict) -> dict:
    sha = ckpt.get("state_sha256") or state_checksum(ckpt["state_dict"])
    return {"path": str(ckpt.get("path", "")), "state_sha256": sha, "model": ckpt["model"],
            "quant": ckpt["quant"], "data": ckpt["data"]}


def make_transfer(net: TransferNet, *, backbone: dict, backbone_artifact: dict, task: dict, epoch: int = 0,
                  optimizer=None, history=None, memory=None, args=None) -> dict:
    full = net.state_dict()
    state = {k: full[k].detach().cpu() for k in saved_keys(net)}
    return {
        "format": FORMAT, "version": VERSION,
        "backbone": _plain(backbone), "backbone_artifact": _plain(backbone_artifact),
        "method": net.method_name, "design": net.design_name, "width": net.width,
        "num_classes": net.classifier.out_features,
        "connectors": [{"op": c.op, "node": c.node, "shape": list(c.shape), "grid": list(c.grid), "kind": c.kind,
                        "frac": f} for c, f in zip(net.connectors, net.fracs)],
        "backbone_formats": dict(net.value_fracs),
        "task": _plain(task),
        "state_dict": state, "state_sha256": state_checksum(state),
        "epoch": int(epoch),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "history": _plain(list(history or [])), "memory": _plain(memory), "args": _plain(args or {}),
    }


def save_transfer(path: str | os.PathLike, net: TransferNet, **fields) -> dict:
    ckpt = make_transfer(net, **fields)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write_bytes(path, buf.getvalue())
    return ckpt


def is_transfer_file(path) -> bool:
    """Whether ``path`` holds a transfer checkpoint (cheap enough for the CLI to dispatch on)."""
    p = Path(path)
    if not p.is_file():
        return False
    obj = torch_load(p)
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def load_transfer(path: str | os.PathLike) -> dict:
    """Read and validate a transfer checkpoint (CheckpointError naming what is wrong)."""
    path = Path(path)
    ckpt = open_checked(path, FORMAT, VERSION, REQUIRED, "pesto transfer")
    if state_checksum(ckpt["state_dict"]) != ckpt.get("state_sha256"):
        raise CheckpointError(f"{path}: the weights do not match their checksum; the file is corrupt")
    ckpt["path"] = str(path)
    return ckpt


def load_backbone(tckpt: dict, backbone=None) -> dict:
    """The backbone checkpoint a transfer checkpoint belongs to (``backbone``: a path or dict that
    overrides the recorded path), checked against the recorded checksum."""
    src = backbone if backbone is not None else tckpt["backbone"]["path"]
    ckpt = src if isinstance(src, dict) else load_checkpoint(src)
    check_backbone(tckpt, ckpt)
    return ckpt


def check_backbone(tckpt: dict, backbone_ckpt: dict) -> None:
    want = tckpt["backbone"]["state_sha256"]
    have = backbone_identity(backbone_ckpt)["state_sha256"]
    if want != have:
        raise CheckpointError(
            f"{tckpt.get('path', 'transfer checkpoint')} was trained on the backbone with weights {want[:12]}... "
            f"({tckpt['backbone']['path']}), but {backbone_ckpt.get('path', 'the backbone given')} has weights "
            f"{have[:12]}...; pass the backbone it was trained on (--backbone PATH) or transfer again")


def build_net(tckpt: dict, backbone_ckpt: dict) -> TransferNet:
    """The trained TransferNet (eval mode) of a transfer checkpoint on its backbone."""
    check_backbone(tckpt, backbone_ckpt)
    model = model_from_checkpoint(backbone_ckpt)
    net = TransferNet(model, tckpt["num_classes"], tckpt["method"], tckpt["design"], tckpt["width"],
                      input_shape=tckpt["task"]["input_shape"])
    ops = [c.op for c in net.connectors]
    if ops != [c["op"] for c in tckpt["connectors"]]:
        raise CheckpointError(f"{tckpt.get('path')}: its connectors {[c['op'] for c in tckpt['connectors']]} are "
                              f"not the ones this backbone has ({ops})")
    state = net.state_dict()
    keys = saved_keys(net)
    missing = [k for k in keys if k not in tckpt["state_dict"]]
    shapes = [k for k in keys if k in tckpt["state_dict"] and tckpt["state_dict"][k].shape != state[k].shape]
    if missing or shapes:
        raise CheckpointError(f"{tckpt.get('path')}: the state does not fit a {tckpt['method']} network on this "
                              f"backbone (missing {missing[:3]}, shape mismatches {shapes[:3]})")
    state.update({k: tckpt["state_dict"][k] for k in keys})
    net.load_state_dict(state)
    net.set_formats([c["frac"] for c in tckpt["connectors"]], tckpt["backbone_formats"])
    return net.eval()
