"""The training loop: data, model, schedule, checkpoints, DDP, history; the method does the step.

    from pesto.train import TrainConfig, train
    ckpt = train(TrainConfig(mode="wpc", epochs=2, subset=5000, out="runs/wpc.pt"))

One generic loop for every mode: ``cfg.mode`` names a method in the registry of
pesto.train.methods, and the loop calls that method object each step (``train_step``: its hooks
before and after the optimizer step), at each epoch's end (metrics, report) and for the
checkpoint (``state_dict``). Runs on one process, or on several under torchrun
(DistributedDataParallel; gloo on CPU, nccl on GPUs). After every epoch rank 0 writes the
checkpoint atomically; ``resume=True`` continues a killed run from its last completed epoch,
exactly (data order, optimizer and method state are restored).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data import dataset_info, load_splits, select_classes, subset
from ..errors import CheckpointError, ConfigError
from ..prune import Regularizer
from ..validate import check_device, check_float, check_int, check_options
from .checkpoint import build_from_config, load_checkpoint, save_checkpoint, unwrap
from .methods import Method, get_method, method_names


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
    # --mode ast (Chapter 3, pesto.train.ast_gc): K sub-nets sharing one set of ternary codes
    subnets: list = field(default_factory=list)   # targets: group sparsities, or N:M for the nm patterns
    scheme: str = "nd"                   # nd (non-disjoint) | cs (completely subset), table 8
    gc: bool | None = None               # gradient correction (eq 3.4); default on, off for joint
    pattern: str = "group"               # group | nm (N of M PE groups) | nm-element (N of M weights)
    joint: bool = False                  # joint training (eq 3.3): every sub-net every step
    sparsity_init: float = 0.0           # s_i of the sparsity schedule
    prune_every: int = 32                # delta tau: steps between two mask updates of a sub-net
    prune_start: float = 0.0             # the mask schedule's window, fractions of the run's steps
    prune_end: float = 0.75
    regrow: float = 0.5                  # initial prune-and-regrow fraction (-> 0 by cosine)
    sparsity_schedule: str = "cosine"    # cosine | cubic (GraNet's ramp)

    def __post_init__(self):
        """Every option with one meaning, checked before anything runs (docs/training.md)."""
        from ..data.datasets import DATASETS
        from ..models import MODELS
        for name, known in (("mode", method_names()), ("optimizer", ("sgd", "adam")), ("model", MODELS), ("dataset", DATASETS)):
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
        get_method(self.mode).validate(self)

    @classmethod
    def default(cls, name: str):
        """The default value of field ``name``."""
        f = cls.__dataclass_fields__[name]
        return f.default_factory() if callable(f.default_factory) else f.default

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return cls(**check_options(cls, d, "training"))

    @property
    def quant(self) -> dict:
        return {"mode": self.mode, "cg": self.cg, "keep_first_last": self.keep_first_last,
                "cg_overrides": dict(self.cg_overrides), **get_method(self.mode).quant_extra(self)}


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


# -- one step -------------------------------------------------------------------------------
class _RegularizerMethod(Method):
    """A bare Regularizer driven as a method (the old train_step(model, reg, ...) signature)."""

    def __init__(self, reg: Regularizer):
        self.reg, self.model, self.cfg, self.total_steps = reg, None, None, 0


def train_step(model: nn.Module, method, opt: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor, step: int = 0) -> tuple[float, float, int]:
    """One optimisation step of ``method`` (a Method, or a bare Regularizer): (cross-entropy,
    penalty, correct predictions)."""
    if isinstance(method, Regularizer):
        method = _RegularizerMethod(method)
    s = method.train_step(model, opt, x, y, step)
    return s.ce, s.penalty, s.correct


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


def _history_entry(epoch, lr, sums, steps, seen, elapsed, metrics_: dict) -> dict:
    entry = {
        "epoch": epoch, "lr": lr, "steps": steps, "world_size": _world(), "time_s": round(elapsed, 2),
        "train_loss": sums[0] / max(steps, 1), "penalty": sums[1] / max(steps, 1),
        "train_acc": 100.0 * sums[2] / max(seen, 1),
    }
    entry.update(metrics_)
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
    start, history, method_state = 0, [], None
    out = Path(cfg.out) if cfg.out else None
    if cfg.resume and out is not None and out.is_file():
        ckpt = load_checkpoint(out)
        _check_resumable(out, ckpt, cfg, model_cfg)
        model.load_state_dict(ckpt["state_dict"])
        if ckpt.get("optimizer"):
            opt.load_state_dict(ckpt["optimizer"])
        start, history = int(ckpt["epoch"]), list(ckpt.get("history") or [])
        method_state = ckpt.get("method")
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
    steps_per_epoch = min(len(train_dl), cfg.steps_per_epoch or len(train_dl))
    method = get_method(cfg.mode)(model, cfg, steps_per_epoch * cfg.epochs)
    if method_state:
        method.load_state_dict(method_state)
    layers = method.layers
    net = (nn.parallel.DistributedDataParallel(model, find_unused_parameters=method.find_unused_parameters)
           if world > 1 else model)

    if rank == 0:
        tqdm.write(f"pesto train: {cfg.model} mode {cfg.mode} on {cfg.dataset} ({len(train_ds)} train / "
                   f"{len(test_ds)} test images), {len(layers)} compressed layers, {method.describe()}, "
                   f"world size {world}, device {device}"
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
        total = steps_per_epoch
        bar = tqdm(total=total, desc=f"{cfg.mode} epoch {epoch + 1}/{cfg.epochs}", unit="step",
                   disable=not cfg.progress or rank != 0, leave=False, dynamic_ncols=True)
        sums, steps, seen = [0.0, 0.0, 0], 0, 0
        for x, y in train_dl:
            if steps >= total:
                break
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            st = method.train_step(net, opt, x, y, epoch * total + steps)
            if not math.isfinite(st.ce):
                raise ConfigError(f"training diverged at epoch {epoch + 1} step {steps + 1} (loss {st.ce}); "
                                  f"lower --lr or --lambda")
            sums[0] += st.ce; sums[1] += st.penalty; sums[2] += st.correct
            steps += 1
            seen += st.images
            bar.update(1)
            bar.set_postfix(method.postfix(st))
        bar.close()
        train_s = time.perf_counter() - t0
        if rank == 0:
            m = method.epoch_metrics(model, test_dl, device)
            entry = _history_entry(epoch + 1, lr, sums, steps, seen, time.perf_counter() - t0, m)
            entry["train_s"] = round(train_s, 2)   # the steps alone (time_s includes the evaluation)
            history.append(entry)
            tqdm.write(f"epoch {epoch + 1}/{cfg.epochs}  lr {lr:.3g}  loss {entry['train_loss']:.4f}  "
                       f"test acc {m['test_acc']:.2f}%  sparsity {100 * m['overall_sparsity']:.1f}%  "
                       f"group sparsity {100 * m['group_sparsity']:.1f}%  "
                       f"comp {m['compression_rate']:.1f}x  ({entry['time_s']:.0f} s)")
            report = method.epoch_report(entry)
            if report:
                tqdm.write(report)
        method.on_epoch_end(epoch + 1)
        if rank == 0:
            fields_ = dict(model_cfg=model_cfg, quant=cfg.quant,
                           data={"dataset": cfg.dataset, "mean": info.mean, "std": info.std, "classes": cfg.classes},
                           epoch=epoch + 1, optimizer=opt,
                           scheduler={"milestones": cfg.milestones, "gamma": cfg.gamma, "base_lr": cfg.lr,
                                      "last_epoch": epoch + 1},
                           history=history, args=asdict(cfg), method=method.state_dict())
            ckpt = save_checkpoint(out, model, **fields_) if out else _in_memory(model, fields_)
        if _is_dist():
            dist.barrier()
    if rank == 0 and not ckpt:  # nothing left to train (resumed a finished run)
        ckpt = load_checkpoint(out) if out and out.is_file() else {}
    if rank == 0 and cfg.plots and ckpt:
        from .plots import plot_run
        plot_run(model, ckpt.get("history", history), cfg.plots, cfg.mode, ckpt.get("method"))
    if world > 1 and owns_group:
        dist.destroy_process_group()
    return ckpt if rank == 0 else {}


# What defines a run's trajectory besides the architecture and quantization: resuming with any of
# these changed would silently mix two experiments in one checkpoint. epochs and milestones may
# change (extend a run, add a decay).
RUN_DEFINING = ("dataset", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "gamma", "lam", "a",
                "subset", "steps_per_epoch", "augment", "seed", "classes")


def _check_resumable(path: Path, ckpt: dict, cfg: TrainConfig, model_cfg: dict) -> None:
    """Refuse to continue a checkpoint of another architecture, quantization or training setting
    (the loop's RUN_DEFINING plus the method's own run_defining options)."""
    if ckpt["model"] != model_cfg or ckpt["quant"] != cfg.quant:
        raise CheckpointError(f"--resume: {path} holds {ckpt['model']['name']} {ckpt['quant']}, "
                              f"this run asks for {cfg.model} {cfg.quant}; use another --out")
    saved, now = ckpt.get("args") or {}, asdict(cfg)
    keys = RUN_DEFINING + tuple(k for k in get_method(cfg.mode).run_defining if k not in RUN_DEFINING)
    diff = [f"{k} {saved[k]!r} -> {now[k]!r}" for k in keys if k in saved and saved[k] != now[k]]
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
