"""The transfer training loop: a frozen backbone, a new task, one method.

    from pesto.transfer import TransferConfig, transfer
    ckpt = transfer(TransferConfig(backbone="runs/backbone.pt", data="fashion-mnist", classes=[5, 6, 7, 8, 9],
                                   method="repnet", design="dual", epochs=10, out="runs/fm59.pt"))

Adam with a cosine learning-rate decay per step (the chapter's setting, section 4.4.1.2); the
new task's images are normalised with the backbone's mean/std (the deployed pipeline's input);
the backbone's int16 formats at the connectors come from its artifact (exported with the given
options, or read from ``backbone_artifact``). After every epoch the checkpoint is written
atomically; ``resume=True`` continues a killed run, refusing one made on another backbone or
with other settings. Evaluation, data loading and checkpoint plumbing are pesto.train's.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data import dataset_info, load_splits, select_classes, subset
from ..data.datasets import ImageDataset, resize_images
from ..errors import CheckpointError, ConfigError, DatasetError
from ..train.checkpoint import load_checkpoint, model_from_checkpoint
from ..train.loop import evaluate
from ..validate import check_device, check_float, check_int, check_options
from . import deploy
from .checkpoint import backbone_identity, build_net, check_backbone, load_transfer, save_transfer
from .connectors import backbone_ops
from .memory import measure_step
from .model import TransferNet, design_of, method_of


@dataclass
class TransferConfig:
    backbone: str = "runs/backbone.pt"   # a `pesto train` checkpoint
    data: str = "fashion-mnist"          # the new task: fashion-mnist, cifar10, digits, imagenet
    data_root: str | None = None
    classes: list[int] | None = None     # the new task's labels (relabelled 0..k-1); None: all
    resize: bool = False                 # resize the images to the backbone's input (digits always are)
    method: str = "repnet"               # see pesto.transfer.METHODS
    design: str = "dual"                 # see pesto.transfer.DESIGNS (Rep-Net only)
    width: float = 0.5                   # Rep-Net mid channels = width x the connector's channels
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 5e-3                     # Rep-Net and the new classifier learn from scratch (1e-3 suits full fine-tuning)
    weight_decay: float = 0.0
    subset: int | None = None
    test_subset: int | None = None
    steps_per_epoch: int | None = None
    augment: bool = False
    workers: int = 0
    seed: int = 0
    out: str | None = "runs/transfer.pt"
    resume: bool = False
    device: str | None = None
    progress: bool = True
    threads: int | None = None
    measure_memory: bool = True          # measure one training step's memory (memory.measure_step)
    # the backbone's artifact: a file, or the export options that make it (as pesto export-to-fpga)
    backbone_artifact: str | None = None
    calib_data: str = "fashion-mnist"
    calib_images: int = 256
    cg: int | None = None
    act_bits: int = 16
    frac_bits: int | None = None
    headroom_bits: int = 1

    def __post_init__(self):
        method_of(self.method)
        design_of(self.design)
        if self.optimizer not in ("sgd", "adam"):
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; use sgd or adam")
        for name in ("epochs", "batch_size", "calib_images"):
            setattr(self, name, check_int(getattr(self, name), name, 1))
        for name in ("subset", "test_subset", "steps_per_epoch", "threads", "cg"):
            if getattr(self, name) is not None:
                setattr(self, name, check_int(getattr(self, name), name, 1))
        self.workers = check_int(self.workers, "workers", 0)
        self.seed = check_int(self.seed, "seed", 0, 2**31 - 1)
        self.lr = check_float(self.lr, "lr", 0.0, lo_open=True)
        self.weight_decay = check_float(self.weight_decay, "weight_decay", 0.0)
        self.width = check_float(self.width, "width", 0.0, 4.0, lo_open=True)
        if self.device is not None:
            check_device(self.device)

    @classmethod
    def from_dict(cls, d: dict) -> "TransferConfig":
        return cls(**check_options(cls, d, "transfer"))

    @property
    def export_options(self) -> dict:
        return deploy.export_options(self.cg, self.act_bits, self.frac_bits, self.headroom_bits, self.calib_data,
                                     self.calib_images)


# settings a resumed run must share with the checkpoint (epochs may grow)
RUN_DEFINING = ("data", "classes", "resize", "method", "design", "width", "batch_size", "optimizer", "lr",
                "weight_decay", "subset", "steps_per_epoch", "augment", "seed")


def task_splits(cfg: TransferConfig, backbone_ckpt: dict):
    """(train, test) of the new task, checked against the backbone's input and normalised as it is."""
    m, d = backbone_ckpt["model"], backbone_ckpt["data"]
    c, size = int(m["in_channels"]), int(m["input_size"])
    info = dataset_info(cfg.data)
    if info.in_channels != c:
        raise DatasetError(f"{cfg.data} images have {info.in_channels} channel(s), the backbone "
                           f"{m['name']} takes {c}; transfer to a task with {c}-channel images")
    train, test = load_splits(cfg.data, cfg.data_root, cfg.augment, input_size=size)
    train, test = select_classes(train, cfg.classes), select_classes(test, cfg.classes)
    out = []
    for ds, n, seed in ((train, cfg.subset, cfg.seed), (test, cfg.test_subset, cfg.seed + 1)):
        ds = _subset(ds, n, seed)
        if isinstance(ds, ImageDataset):
            hw = tuple(ds.images.shape[-2:])
            if hw != (size, size):
                if not cfg.resize:
                    raise DatasetError(f"{cfg.data} images are {hw[0]}x{hw[1]}, the backbone {m['name']} takes "
                                       f"{size}x{size}; pass --resize to resize them (bilinear)")
                ds = ImageDataset(resize_images(ds.images.numpy(), size), ds.labels.numpy(), ds.info, ds.augment)
        ds.info = dataclasses.replace(ds.info, mean=tuple(d["mean"]), std=tuple(d["std"]))
        out.append(ds)
    return out[0], out[1]


def _subset(ds, n, seed):
    """pesto.data.subset, kept an ImageDataset (so it can still be resized) where it is one."""
    sub = subset(ds, n, seed)
    if isinstance(sub, torch.utils.data.Subset) and isinstance(ds, ImageDataset):
        idx = torch.as_tensor(sub.indices)
        return ImageDataset(ds.images[idx].numpy(), ds.labels[idx].numpy(), ds.info, ds.augment)
    return sub


def num_classes_of(cfg: TransferConfig) -> int:
    return len(cfg.classes) if cfg.classes else dataset_info(cfg.data).num_classes


def prepare(cfg: TransferConfig, backbone_ckpt: dict) -> tuple[TransferNet, dict]:
    """The untrained TransferNet with its connector formats, and the backbone artifact's record."""
    model = model_from_checkpoint(backbone_ckpt)
    shape = (int(backbone_ckpt["model"]["in_channels"]),) + (int(backbone_ckpt["model"]["input_size"]),) * 2
    net = TransferNet(model, num_classes_of(cfg), cfg.method, cfg.design, cfg.width, input_shape=shape)
    art = deploy.backbone_artifact(backbone_ckpt, cfg.backbone_artifact, cfg.export_options)
    values = deploy.backbone_values(model, shape, art.meta["input"]["mean"], art.meta["input"]["std"])
    formats = deploy.backbone_formats(art, values, backbone_ops(model, shape))
    net.set_formats(deploy.connector_formats(art, values, net.connectors), formats)
    record = {"tconv_sha256": deploy.tconv_fingerprint(art), "options": cfg.export_options,
              "file": cfg.backbone_artifact}
    return net, record


def _optimizer(cfg: TransferConfig, net: TransferNet):
    params = net.trainable_parameters()
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_at(cfg: TransferConfig, step: int, total: int) -> float:
    """Cosine decay from lr to 0 over the run's steps."""
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(step, total) / max(total, 1)))


def _check_resumable(path: Path, t: dict, cfg: TransferConfig, bb: dict) -> None:
    check_backbone(t, bb)
    saved, now = t.get("args") or {}, asdict(cfg)
    diff = [f"{k} {saved[k]!r} -> {now[k]!r}" for k in RUN_DEFINING if k in saved and saved[k] != now[k]]
    if diff:
        raise CheckpointError(f"--resume: {path} was trained with other settings ({'; '.join(diff)}); resume with "
                              f"the same settings, or start a new run with another --out")


def transfer(cfg: TransferConfig) -> dict:
    """Run (or resume) the transfer ``cfg`` describes; returns the last checkpoint dict."""
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    bb = load_checkpoint(cfg.backbone)
    train_ds, test_ds = task_splits(cfg, bb)
    g = torch.Generator().manual_seed(cfg.seed)
    train_dl = DataLoader(train_ds, cfg.batch_size, shuffle=True, drop_last=True, num_workers=cfg.workers,
                          generator=g, persistent_workers=cfg.workers > 0)
    if len(train_dl) == 0:
        raise DatasetError(f"{len(train_ds)} training images make no batch of {cfg.batch_size}; lower --batch-size")
    test_dl = DataLoader(test_ds, 512, num_workers=cfg.workers)
    steps = min(len(train_dl), cfg.steps_per_epoch or len(train_dl))
    total = steps * cfg.epochs

    out = Path(cfg.out) if cfg.out else None
    start, history, memory = 0, [], None
    if cfg.resume and out is not None and out.is_file():
        t = load_transfer(out)
        _check_resumable(out, t, cfg, bb)
        net = build_net(t, bb)
        record = t["backbone_artifact"]
        opt = _optimizer(cfg, net)
        if t.get("optimizer"):
            opt.load_state_dict(t["optimizer"])
        start, history, memory = int(t["epoch"]), list(t.get("history") or []), t.get("memory")
    else:
        net, record = prepare(cfg, bb)
        opt = _optimizer(cfg, net)
    net.to(device)
    task = {"dataset": cfg.data, "classes": cfg.classes, "input_shape": list(net.input_shape),
            "mean": bb["data"]["mean"], "std": bb["data"]["std"], "resize": cfg.resize or cfg.data == "digits"}
    if memory is None and cfg.measure_memory:
        x, y = next(iter(train_dl))
        probe = copy.deepcopy(net)
        memory = measure_step(probe, _optimizer(cfg, probe), x.to(device), y.to(device))
        del probe
    tqdm.write(f"pesto transfer: {bb['model']['name']} backbone ({Path(cfg.backbone).name}) -> {cfg.data}"
               f"{' classes ' + ','.join(map(str, cfg.classes)) if cfg.classes else ''} ({len(train_ds)} train / "
               f"{len(test_ds)} test images), {net.describe()}, device {device}"
               + (f", resuming after epoch {start}" if start else ""))
    if memory:
        tqdm.write(f"training memory per step of {memory['batch']}: {memory['saved_activation_bytes'] / 1e6:.2f} MB "
                   f"activations saved for backward, {memory['trainable_bytes'] / 1e6:.3f} MB trainable "
                   f"(params + grads + optimizer)")
    ckpt: dict = {}
    for epoch in range(start, cfg.epochs):
        g.manual_seed(cfg.seed + epoch)
        torch.manual_seed(cfg.seed + 1000 * epoch)
        net.train()
        t0 = time.perf_counter()
        bar = tqdm(total=steps, desc=f"{cfg.method} epoch {epoch + 1}/{cfg.epochs}", unit="step",
                   disable=not cfg.progress, leave=False, dynamic_ncols=True)
        loss_sum, correct, seen, n = 0.0, 0, 0, 0
        for x, y in train_dl:
            if n >= steps:
                break
            lr = lr_at(cfg, epoch * steps + n, total)
            for group in opt.param_groups:
                group["lr"] = lr
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = net(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ce = float(loss.detach())
            if not math.isfinite(ce):
                raise ConfigError(f"training diverged at epoch {epoch + 1} step {n + 1} (loss {ce}); lower --lr")
            loss_sum += ce
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            n += 1
            bar.update(1)
            bar.set_postfix(loss=f"{ce:.3f}")
        bar.close()
        test = evaluate(net, test_dl, device)
        entry = {"epoch": epoch + 1, "lr": lr, "steps": n, "time_s": round(time.perf_counter() - t0, 2),
                 "train_loss": loss_sum / max(n, 1), "train_acc": 100.0 * correct / max(seen, 1),
                 "test_loss": test[0], "test_acc": test[1]}
        history.append(entry)
        tqdm.write(f"epoch {epoch + 1}/{cfg.epochs}  lr {lr:.3g}  loss {entry['train_loss']:.4f}  "
                   f"train acc {entry['train_acc']:.2f}%  test acc {test[1]:.2f}%  ({entry['time_s']:.0f} s)")
        fields_ = dict(backbone=backbone_identity(bb), backbone_artifact=record, task=task, epoch=epoch + 1,
                       optimizer=opt, history=history, memory=memory, args=asdict(cfg))
        if out is not None:
            ckpt = save_transfer(out, net, **fields_)
        else:
            from .checkpoint import make_transfer
            ckpt = make_transfer(net, **fields_)
    if not ckpt and out is not None and out.is_file():
        ckpt = load_transfer(out)
    return ckpt


def summary(ckpt: dict) -> dict:
    last = ckpt["history"][-1] if ckpt.get("history") else {}
    mem = ckpt.get("memory") or {}
    return {"method": ckpt["method"], "design": ckpt["design"] if ckpt["method"] == "repnet" else None,
            "task": ckpt["task"], "epoch": ckpt["epoch"], "test_acc": last.get("test_acc"),
            "connectors": [c["op"] for c in ckpt["connectors"]],
            "saved_activation_bytes": mem.get("saved_activation_bytes"), "trainable_bytes": mem.get("trainable_bytes"),
            "peak_rss_bytes": mem.get("peak_rss_bytes"), "backbone_sha256": ckpt["backbone"]["state_sha256"]}
