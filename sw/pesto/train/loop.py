"""The training loop: data, model, mode, regularizer, schedule, checkpoints, DDP, history.

    from pesto.train import TrainConfig, train
    ckpt = train(TrainConfig(mode="wpc", epochs=2, subset=5000, out="runs/wpc.pt"))

Runs on one process, or on several under torchrun (DistributedDataParallel; gloo on CPU, nccl on
GPUs). After every epoch rank 0 writes the checkpoint atomically; ``resume=True`` continues a
killed run from its last completed epoch.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import metrics
from ..data import dataset_info, load_splits, select_classes, subset
from ..errors import CheckpointError, ConfigError
from ..prune import MODES, Regularizer
from ..validate import check_device, check_float, check_int
from .checkpoint import TERNARY_MODES, build_from_config, load_checkpoint, save_checkpoint, unwrap


@dataclass
class TrainConfig:
    mode: str = "wpc"
    model: str = "resnet20"
    dataset: str = "fashion-mnist"
    data_root: str | None = None
    epochs: int = 2
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    lam: float = 1e-3                    # lambda of eq 2.4-2.6
    a: float = 1.0                       # WPC threshold coefficient of eq 2.7
    cg: int = 16
    cg_overrides: dict[str, int] = field(default_factory=dict)
    keep_first_last: bool = True
    subset: int | None = None            # train on a fixed random subset of this many images
    test_subset: int | None = None
    classes: list[int] | None = None     # train on these labels only, relabelled 0..k-1 (e.g. [0, 1, 2, 3, 4])
    steps_per_epoch: int | None = None   # cap the steps of an epoch (smoke tests, budgets)
    augment: bool = True
    workers: int = 0
    seed: int = 0
    out: str | None = "runs/model.pt"    # checkpoint written after every epoch
    resume: bool = False
    plots: str | None = None             # folder for the figures (None: no plots)
    device: str | None = None            # default: cuda if available else cpu
    progress: bool = True
    init: str | None = None              # start from this checkpoint's weights (e.g. a float model)
    threads: int | None = None           # torch CPU threads (1 is fastest on a crowded machine)

    def __post_init__(self):
        """Every option with one meaning, checked before anything runs (docs/training.md)."""
        from ..data.datasets import DATASETS
        from ..models import MODELS
        for name, known in (("mode", MODES), ("optimizer", ("sgd", "adam")), ("model", MODELS), ("dataset", DATASETS)):
            if name == "model" and isinstance(self.model, str) and ":" in self.model:
                continue                 # a user's factory package.module:function, imported by build_model
            if getattr(self, name) not in known:
                raise ConfigError(f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(known)}")
        for name in ("epochs", "batch_size", "cg"):
            setattr(self, name, check_int(getattr(self, name), name, 1))
        self.workers = check_int(self.workers, "workers", 0)
        self.seed = check_int(self.seed, "seed", 0, 2**31 - 1)
        for name, hint in (("subset", ""), ("test_subset", ""), ("threads", ""),
                           ("steps_per_epoch", " (leave it unset for whole epochs)")):
            if getattr(self, name) is not None:
                try:
                    setattr(self, name, check_int(getattr(self, name), name, 1))
                except ConfigError as e:
                    raise ConfigError(f"{e}{hint}") from None
        if self.subset is not None and self.subset < self.batch_size:
            raise ConfigError(f"subset {self.subset} is smaller than one batch ({self.batch_size}): no step would "
                              f"run (the last partial batch is dropped); lower the batch size or raise the subset")
        self.lr = check_float(self.lr, "lr", 0.0, lo_open=True)
        self.momentum = check_float(self.momentum, "momentum", 0.0, 1.0, hi_open=True)
        self.weight_decay = check_float(self.weight_decay, "weight_decay", 0.0)
        self.gamma = check_float(self.gamma, "gamma", 0.0, 1.0, lo_open=True)
        self.lam = check_float(self.lam, "lambda", 0.0)
        self.a = check_float(self.a, "a", 0.0, lo_open=True)
        self.milestones = [check_int(m, "milestone", 1) for m in self.milestones]
        if any(b <= a for a, b in zip(self.milestones, self.milestones[1:])):
            raise ConfigError(f"milestones {self.milestones} must increase")
        self.cg_overrides = {str(k): check_int(v, f"Cg of {k}", 1) for k, v in dict(self.cg_overrides).items()}
        if self.data_root is not None and not Path(self.data_root).is_dir():
            raise ConfigError(f"data_root {self.data_root} is not a folder; pesto looks for the dataset only there")
        if self.device is not None:
            check_device(self.device)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"unknown training options {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)

    @property
    def quant(self) -> dict:
        return {"mode": self.mode, "cg": self.cg, "keep_first_last": self.keep_first_last,
                "cg_overrides": dict(self.cg_overrides)}


def lr_at(cfg: TrainConfig, epoch: int) -> float:
    """Step schedule: lr * gamma ** (number of milestones <= epoch), epochs counted from 0."""
    return cfg.lr * cfg.gamma ** sum(1 for m in cfg.milestones if epoch >= m)


# -- distributed ----------------------------------------------------------------------------
def _dist_setup(device: torch.device) -> tuple[int, int]:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _world() -> int:
    return dist.get_world_size() if _is_dist() else 1


def _is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


# -- one epoch ------------------------------------------------------------------------------
def train_step(model: nn.Module, reg: Regularizer, opt: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor) -> tuple[float, float, int]:
    """One optimisation step: (cross-entropy, penalty, correct predictions)."""
    out = model(x)
    ce = F.cross_entropy(out, y)
    with torch.set_grad_enabled(not reg.proximal):  # a proximal penalty is only logged here
        pen = reg.penalty() if reg.active else None
    loss = ce + pen if pen is not None and not reg.proximal else ce
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    reg.prox_(opt.param_groups[0]["lr"])  # proximal regularizers act after the step
    return float(ce.detach()), float(pen.detach()) if pen is not None else 0.0, int((out.argmax(1) == y).sum())


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> tuple[float, float]:
    """(mean cross-entropy, top-1 accuracy in %) of ``model`` on ``loader``."""
    model.eval()
    loss, correct, n = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        out = model(x)
        loss += float(F.cross_entropy(out, y, reduction="sum"))
        correct += int((out.argmax(1) == y).sum())
        n += len(y)
    return loss / max(n, 1), 100.0 * correct / max(n, 1)


def _history_entry(epoch, cfg, lr, sums, steps, seen, test, elapsed, model_m, reg) -> dict:
    entry = {
        "epoch": epoch, "lr": lr, "steps": steps, "world_size": _world(), "time_s": round(elapsed, 2),
        "train_loss": sums[0] / max(steps, 1), "penalty": sums[1] / max(steps, 1),
        "train_acc": 100.0 * sums[2] / max(seen, 1), "test_loss": test[0], "test_acc": test[1],
    }
    for k in ("overall_sparsity", "group_sparsity", "in_group_sparsity", "compression_rate"):
        entry[k] = model_m[k]
    entry["layers"] = {name: {"group_sparsity": v["group_sparsity"], "layer_sparsity": v["layer_sparsity"]}
                       for name, v in model_m["layers"].items()}
    if cfg.mode == "wpc":
        for name, t in reg.thresholds().items():
            entry["layers"][name].update(delta=t["delta"], clipped=t["clipped"])
    return entry


def _make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def train(cfg: TrainConfig, model: nn.Module | None = None) -> dict:
    """Train (or resume) as ``cfg`` says; returns the last checkpoint dict (rank 0) or {} (others).
    ``model``: a user's own nn.Module to train instead of building ``cfg.model`` (pesto.train.fit)."""
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    owns_group = not _is_dist()
    rank, world = _dist_setup(device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)

    info = dataset_info(cfg.dataset)
    train_ds, test_ds = load_splits(cfg.dataset, cfg.data_root, cfg.augment)
    train_ds, test_ds = select_classes(train_ds, cfg.classes), select_classes(test_ds, cfg.classes)
    train_ds, test_ds = subset(train_ds, cfg.subset, cfg.seed), subset(test_ds, cfg.test_subset, cfg.seed + 1)
    sampler = torch.utils.data.DistributedSampler(train_ds, world, rank, seed=cfg.seed) if world > 1 else None
    g = torch.Generator().manual_seed(cfg.seed)
    train_dl = DataLoader(train_ds, cfg.batch_size, shuffle=sampler is None, sampler=sampler, drop_last=True,
                          num_workers=cfg.workers, generator=g, persistent_workers=cfg.workers > 0)
    test_dl = DataLoader(test_ds, 512, num_workers=cfg.workers)
    if len(train_dl) == 0:
        raise ConfigError(f"{len(train_ds)} training images make no batch of {cfg.batch_size}: no step would run; "
                          f"lower --batch-size")

    num_classes = len(cfg.classes) if cfg.classes else info.num_classes
    model_cfg = {"name": cfg.model, "in_channels": info.in_channels, "num_classes": num_classes,
                 "input_size": info.input_size}
    model = build_from_config(model_cfg, cfg.quant, model)
    opt = _make_optimizer(cfg, model)
    start, history = 0, []
    out = Path(cfg.out) if cfg.out else None
    if cfg.resume and out is not None and out.is_file():
        ckpt = load_checkpoint(out)
        _check_resumable(out, ckpt, cfg, model_cfg)
        model.load_state_dict(ckpt["state_dict"])
        if ckpt.get("optimizer"):
            opt.load_state_dict(ckpt["optimizer"])
        start, history = int(ckpt["epoch"]), list(ckpt.get("history") or [])
    elif cfg.init:
        init = _init_from(model, cfg.init)
        if rank == 0:
            tqdm.write(f"--init {cfg.init}: copied {len(init['copied'])} tensors"
                       + (f"; freshly initialised {', '.join(init['fresh'])} (the checkpoint has no classifier)"
                          if init["fresh"] else "")
                       + (f"; ignored {len(init['ignored'])} checkpoint tensors with no place in {cfg.model} "
                          f"(e.g. {', '.join(init['ignored'][:3])})" if init["ignored"] else ""))
    model.to(device)
    _optimizer_to(opt, device)
    reg = Regularizer.for_mode(cfg.mode, model, cfg.lam, cfg.a, cfg.cg, cfg.keep_first_last, cfg.cg_overrides)
    layers = reg.layers
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model

    if rank == 0:
        tqdm.write(f"pesto train: {cfg.model} mode {cfg.mode} on {cfg.dataset} ({len(train_ds)} train / "
                   f"{len(test_ds)} test images), {len(layers)} compressed layers, Cg {cfg.cg}, "
                   f"lambda {cfg.lam}, a {cfg.a}, world size {world}, device {device}"
                   + (f", resuming after epoch {start}" if start else ""))
    ckpt = {}
    for epoch in range(start, cfg.epochs):
        lr = lr_at(cfg, epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        # data order and augmentation depend on (seed, epoch, rank) only: a resumed run
        # sees the same batches as an uninterrupted one
        g.manual_seed(cfg.seed + epoch)
        torch.manual_seed(cfg.seed + 1000 * epoch + rank)
        if sampler is not None:
            sampler.set_epoch(epoch)
        net.train()
        t0 = time.perf_counter()
        total = min(len(train_dl), cfg.steps_per_epoch or len(train_dl))
        bar = tqdm(total=total, desc=f"{cfg.mode} epoch {epoch + 1}/{cfg.epochs}", unit="step",
                   disable=not cfg.progress or rank != 0, leave=False, dynamic_ncols=True)
        sums, steps, seen = [0.0, 0.0, 0], 0, 0
        for x, y in train_dl:
            if steps >= total:
                break
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            ce, pen, correct = train_step(net, reg, opt, x, y)
            if not math.isfinite(ce):
                raise ConfigError(f"training diverged at epoch {epoch + 1} step {steps + 1} (loss {ce}); "
                                  f"lower --lr or --lambda")
            sums[0] += ce; sums[1] += pen; sums[2] += correct
            steps += 1
            seen += len(y)
            bar.update(1)
            bar.set_postfix(loss=f"{ce:.3f}", pen=f"{pen:.3f}")
        bar.close()
        if rank == 0:
            test = evaluate(model, test_dl, device)
            m = metrics.model_metrics(model, layers)
            entry = _history_entry(epoch + 1, cfg, lr, sums, steps, seen, test, time.perf_counter() - t0, m, reg)
            history.append(entry)
            tqdm.write(f"epoch {epoch + 1}/{cfg.epochs}  lr {lr:.3g}  loss {entry['train_loss']:.4f}  "
                       f"test acc {test[1]:.2f}%  sparsity {100 * m['overall_sparsity']:.1f}%  "
                       f"group sparsity {100 * m['group_sparsity']:.1f}%  "
                       f"comp {m['compression_rate']:.1f}x  ({entry['time_s']:.0f} s)")
            fields_ = dict(model_cfg=model_cfg, quant=cfg.quant,
                           data={"dataset": cfg.dataset, "mean": info.mean, "std": info.std, "classes": cfg.classes},
                           epoch=epoch + 1, optimizer=opt,
                           scheduler={"milestones": cfg.milestones, "gamma": cfg.gamma, "base_lr": cfg.lr,
                                      "last_epoch": epoch + 1},
                           history=history, args=asdict(cfg))
            ckpt = save_checkpoint(out, model, **fields_) if out else _in_memory(model, fields_)
        if _is_dist():
            dist.barrier()
    if rank == 0 and not ckpt:  # nothing left to train (resumed a finished run)
        ckpt = load_checkpoint(out) if out and out.is_file() else {}
    if rank == 0 and cfg.plots and ckpt:
        from .plots import plot_run
        plot_run(model, ckpt.get("history", history), cfg.plots, cfg.mode)
    if world > 1 and owns_group:
        dist.destroy_process_group()
    return ckpt if rank == 0 else {}


# What defines a run's trajectory besides the architecture and quantization: resuming with any of
# these changed would silently mix two experiments in one checkpoint. epochs and milestones may
# change (extend a run, add a decay).
RUN_DEFINING = ("dataset", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "gamma", "lam", "a",
                "subset", "steps_per_epoch", "augment", "seed", "classes")


def _check_resumable(path: Path, ckpt: dict, cfg: TrainConfig, model_cfg: dict) -> None:
    """Refuse to continue a checkpoint of another architecture, quantization or training setting."""
    if ckpt["model"] != model_cfg or ckpt["quant"] != cfg.quant:
        raise CheckpointError(f"--resume: {path} holds {ckpt['model']['name']} {ckpt['quant']}, "
                              f"this run asks for {cfg.model} {cfg.quant}; use another --out")
    saved, now = ckpt.get("args") or {}, asdict(cfg)
    diff = [f"{k} {saved[k]!r} -> {now[k]!r}" for k in RUN_DEFINING if k in saved and saved[k] != now[k]]
    if diff:
        raise CheckpointError(f"--resume: {path} was trained with other settings ({'; '.join(diff)}); "
                              f"resume with the same settings, or start a new run with another --out")


def _in_memory(model, fields_) -> dict:
    from .checkpoint import make_checkpoint
    return make_checkpoint(model, **fields_)


def _init_from(model: nn.Module, path: str) -> dict:
    """Copy matching weights of another checkpoint (a float model into a ternary one, say).

    A backbone-only checkpoint (`pesto continual` writes them: no classifier) leaves the model's final
    classifier as initialised; any other missing weight is an error. Returns what was done:
    {"copied": keys, "fresh": keys left initialised, "ignored": checkpoint keys with no place}."""
    src = load_checkpoint(path)["state_dict"]
    own = model.state_dict()
    renamed, used = {}, set()
    for k, v in src.items():
        for cand in (k, k.replace(".weight", ".parametrizations.weight.original"),
                     k.replace(".parametrizations.weight.original", ".weight")):
            if cand in own and own[cand].shape == v.shape:
                renamed[cand] = v
                used.add(k)
                break
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    head = linears[-1] + "." if linears else None
    missing = [k for k in own if k not in renamed]
    fresh = [k for k in missing if head and k.startswith(head)]
    missing = [k for k in missing if k not in fresh]
    if missing:
        raise CheckpointError(f"--init {path}: no weights for {len(missing)} entries (e.g. {missing[:3]}); "
                              f"is it the same architecture?")
    model.load_state_dict({**own, **renamed})
    return {"copied": sorted(renamed), "fresh": fresh, "ignored": sorted(set(src) - used)}


def _optimizer_to(opt: torch.optim.Optimizer, device: torch.device) -> None:
    for state in opt.state.values():
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and k != "step":
                state[k] = v.to(device)
