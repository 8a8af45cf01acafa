"""The continual training loop: tasks in sequence, replay + mixup, progressive freezing, evaluation.

    from pesto.continual import ContinualConfig, run_continual
    result = run_continual(ContinualConfig(learner="simsiam", method="ptlf", out="runs/ptlf.pt"))
    result["acc"]           # the T x T accuracy matrix, result["accuracy"], result["forgetting"]

Per task: a fresh SGD optimizer with a cosine learning rate over the task's steps (as CaSSLe and
solo-learn restart it per task); each step trains the learner on two augmented views of a batch,
mixed for the replay methods with two views of a batch from the buffer (LUMP, eq 5.3:
x~ = lam x + (1 - lam) x_M, lam ~ Beta(alpha, alpha), alpha = 0.4, the same lam for both views);
the freezing methods freeze layers as pesto.continual.ptlf schedules. After the task: the buffer
takes its share of the task (pesto.continual.tasks.ReplayBuffer), every task is evaluated (row t of
the accuracy matrix), and the checkpoint is written atomically. ``resume=True`` continues after the
last completed task and gives bit-identical results to a run that was never stopped: all the
randomness of task t (data order, views, mixup lam, probe batches, buffer draws) comes from
generators seeded by (seed, task, rank), and the checkpoint holds everything else (weights, BN
statistics, heads, buffer, the torch RNG state).

Under torchrun (DDP; gloo on CPU, nccl on GPUs) each rank trains on its share of every batch order;
the buffer and the freezing decisions are identical on all ranks (the task correlations are
broadcast from rank 0), and the DDP wrapper is rebuilt whenever the trainable set changes, so a
frozen parameter is never one DDP waits for (no find_unused_parameters needed).
"""

from __future__ import annotations

import io
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from tqdm import tqdm

from ..errors import CheckpointError, ConfigError
from ..train.loop import _dist_setup   # torchrun's environment -> (rank, world size), one rule for both loops
from ..util import atomic_write_bytes
from .augment import ViewAugment
from .cost import StepMeter, param_bytes
from .evaluate import EVALUATIONS, average_accuracy, forgetting, task_accuracies
from .freeze import find_layers, freeze, frozen_indices, unfreeze
from .learners import build_learner, check_learner
from .ptlf import ORDERS, check_ratio, frozen_target, task_correlations
from .tasks import ReplayBuffer, TaskData, check_tasks, default_tasks, parse_tasks


@dataclass(frozen=True)
class Method:
    replay: bool            # replay buffer + LUMP mixup
    order: str | None       # freezing order (pesto.continual.ptlf.ORDERS), None: no freezing
    joint: bool = False     # all tasks' data at once
    help: str = ""


METHODS: dict[str, Method] = {
    "finetune": Method(False, None, help="tasks in sequence, no replay, no freezing"),
    "lump": Method(True, None, help="LUMP: mixup with the replay buffer, no freezing"),
    "ascending": Method(True, "ascending", help="LUMP + freezing in ascending layer order (table 24)"),
    "ptlf": Method(True, "correlation", help="LUMP + progressive task-correlated layer freezing"),
    "multitask": Method(False, None, joint=True, help="all tasks' data at once (the upper bound)"),
}


@dataclass
class ContinualConfig:
    learner: str = "simsiam"
    method: str = "ptlf"
    model: str = "resnet20"
    dataset: str = "fashion-mnist"
    data_root: str | None = None
    tasks: str | None = None             # "0,1/2,3/..."; None: n_tasks tasks of consecutive classes
    n_tasks: int = 5
    epochs: int = 1                      # per task
    steps_per_task: int | None = None    # cap on the optimisation steps of a task
    batch_size: int = 128                # per process
    lr: float = 0.03
    momentum: float = 0.9
    weight_decay: float = 5e-4
    proj_dim: int = 512
    buffer_size: int = 256
    mixup_alpha: float = 0.4
    freeze_ratio: float = 0.4
    freeze_ramp: float = 1.0             # share of a task over which the frozen ratio rises
    energy: float = 0.97                 # eq 5.7 threshold
    probe_batches: int = 1               # batches of the new task for the gradient of eq 5.6
    train_per_task: int | None = None    # fixed random subset of each task's training images
    bank_per_task: int | None = None     # kNN bank / linear-probe images per task (None: all)
    test_per_task: int | None = None
    eval: str = "knn"
    knn_k: int = 200                     # LUMP: 200 of a task's 10,000 training images (2 %)
    knn_t: float = 0.1
    seed: int = 0
    out: str | None = None               # checkpoint, written after every task
    resume: bool = False
    stop_after: int | None = None        # stop after this many tasks (continue later with resume)
    device: str | None = None
    threads: int | None = None
    progress: bool = True

    def __post_init__(self):
        check_learner(self.learner)
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        check_ratio(self.freeze_ratio)
        if self.eval not in EVALUATIONS:
            raise ConfigError(f"unknown evaluation {self.eval!r}; choose one of {', '.join(EVALUATIONS)}")
        for name in ("epochs", "n_tasks", "probe_batches", "knn_k", "proj_dim"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be >= 2 (BatchNorm and Barlow Twins need a batch), got {self.batch_size}")
        if METHODS[self.method].replay and self.buffer_size < self.batch_size:
            raise ConfigError(f"buffer size {self.buffer_size} is smaller than one batch ({self.batch_size}): "
                              f"mixup draws a whole batch from the buffer; use --buffer-size >= "
                              f"{self.batch_size} or a smaller --batch-size")
        if not 0.0 < self.freeze_ramp <= 1.0:
            raise ConfigError(f"freeze_ramp must be in (0, 1], got {self.freeze_ramp}")
        if not 0.0 < self.energy <= 1.0:
            raise ConfigError(f"energy threshold must be in (0, 1], got {self.energy}")
        if self.lr <= 0 or self.mixup_alpha <= 0 or self.knn_t <= 0:
            raise ConfigError(f"need lr > 0, mixup_alpha > 0, knn_t > 0 (got {self.lr}, {self.mixup_alpha}, {self.knn_t})")
        for name in ("steps_per_task", "train_per_task", "bank_per_task", "test_per_task", "stop_after"):
            v = getattr(self, name)
            if v is not None and int(v) < 1:
                raise ConfigError(f"{name} must be >= 1 or unset, got {v}")
        from ..data import dataset_info
        classes = dataset_info(self.dataset).num_classes
        check_tasks(self.task_split(classes), classes)

    def task_split(self, num_classes: int) -> list[list[int]]:
        return parse_tasks(self.tasks) if self.tasks else default_tasks(num_classes, self.n_tasks)


# settings a resumed run must share with its checkpoint (the rest only says where and how to run)
RUN_DEFINING = ("learner", "method", "model", "dataset", "tasks", "n_tasks", "epochs", "steps_per_task",
                "batch_size", "lr", "momentum", "weight_decay", "proj_dim", "buffer_size", "mixup_alpha",
                "freeze_ratio", "freeze_ramp", "energy", "probe_batches", "train_per_task", "bank_per_task",
                "test_per_task", "eval", "knn_k", "knn_t", "seed")
CONTINUAL_FORMAT = "pesto-continual"
CONTINUAL_VERSION = 1


def _gen(*key: int) -> torch.Generator:
    """A generator seeded by a tuple of integers (seed, task, rank, stream)."""
    s = 0
    for k in key:
        s = (s * 1_000_003 + int(k)) % (2 ** 63 - 1)
    return torch.Generator().manual_seed(s)


class _Run:
    """One continual run's state; ``run_continual`` drives it."""

    def __init__(self, cfg: ContinualConfig):
        from ..data import dataset_info
        self.cfg = cfg
        self.device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.owns_group = not (dist.is_available() and dist.is_initialized())
        self.rank, self.world = _dist_setup(self.device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.info = dataset_info(cfg.dataset)
        self.method = METHODS[cfg.method]
        self.split = cfg.task_split(self.info.num_classes)
        self.data = TaskData.load(cfg.dataset, self.split, cfg.data_root, cfg.train_per_task,
                                  cfg.bank_per_task, cfg.test_per_task, cfg.seed)
        self.view = ViewAugment(self.info.mean, self.info.std)
        torch.manual_seed(cfg.seed)
        self.learner = build_learner(cfg.learner, cfg.model, self.info.in_channels, self.info.input_size,
                                     cfg.proj_dim).to(self.device)
        example = torch.zeros(2, self.info.in_channels, self.info.input_size, self.info.input_size,
                              device=self.device)
        self.layers = find_layers(self.learner.backbone, example)
        self.buffer = ReplayBuffer(cfg.buffer_size)
        self.meter = StepMeter(self.learner)
        self.acc: list[list[float]] = []
        self.decisions: list[dict] = []
        self.costs: list[dict] = []
        self.completed = 0
        self.model_cfg = {"name": cfg.model, "in_channels": self.info.in_channels,
                          "num_classes": self.info.num_classes, "input_size": self.info.input_size}

    # -- the sequence -----------------------------------------------------------------------------
    @property
    def phases(self) -> list[list[int]]:
        """The training phases as lists of task indices: one per task, or one of all (multitask)."""
        T = len(self.split)
        return [list(range(T))] if self.method.joint else [[t] for t in range(T)]

    def steps_of(self, phase: list[int]) -> int:
        per = [len(self.data.train_idx[t]) // (self.cfg.batch_size * self.world) * self.cfg.epochs
               for t in phase]
        if self.cfg.steps_per_task:
            per = [min(p, self.cfg.steps_per_task) for p in per]
        steps = sum(per)
        if steps < 1:
            raise ConfigError(f"task(s) {[t + 1 for t in phase]} have fewer images than one batch of "
                              f"{self.cfg.batch_size} x {self.world} processes; use a smaller --batch-size")
        return steps

    def _wrap(self) -> nn.Module:
        if self.world == 1:
            return self.learner
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(self.learner, device_ids=ids)

    def train_phase(self, p: int, phase: list[int]) -> None:
        cfg, rank, world, B = self.cfg, self.rank, self.world, self.cfg.batch_size
        idx = torch.cat([self.data.train_idx[t] for t in phase])
        images = self.data.train_images
        total = self.steps_of(phase)
        g_order, g_view, g_buf = _gen(cfg.seed, p, 1), _gen(cfg.seed, p, rank, 2), _gen(cfg.seed, p, rank, 3)
        lams = np.random.default_rng([cfg.seed, p, rank, 4]).beta(cfg.mixup_alpha, cfg.mixup_alpha, total)
        replay = self.method.replay and len(self.buffer) > 0
        order = self.method.order if p > 0 else None      # the first task trains every layer

        t0, c0 = time.perf_counter(), time.process_time()
        scores, overhead, overhead_cpu = [0.0] * len(self.layers), 0.0, 0.0
        if order is not None and ORDERS[order][1]:
            scores = self._correlations(p, idx, images)
            overhead, overhead_cpu = time.perf_counter() - t0, time.process_time() - c0
        frozen_log: list[list[int]] = []
        opt = torch.optim.SGD(self.learner.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                              weight_decay=cfg.weight_decay)
        net = self._wrap()
        self.learner.train()
        bar = tqdm(total=total, desc=f"{cfg.method} {cfg.learner} task {p + 1}/{len(self.phases)}", unit="step",
                   disable=not cfg.progress or rank != 0, leave=False, dynamic_ncols=True)
        sums = dict(loss=0.0, bwd_flops=0, fwd_flops=0, saved=0, saved_peak=0, trainable=0)
        buffer_bytes = self.buffer.nbytes(images) if self.method.replay else 0
        step, epoch = 0, 0
        while step < total:
            perm = idx[torch.randperm(len(idx), generator=g_order)]
            for b in range(len(idx) // (B * world)):
                if step >= total:
                    break
                batch = images[perm[(b * world + rank) * B:(b * world + rank + 1) * B]].to(self.device)
                v1, v2 = self.view(batch, g_view), self.view(batch, g_view)
                if replay:
                    mem = images[self.buffer.sample(B, g_buf)].to(self.device)
                    lam = float(lams[step])
                    v1 = lam * v1 + (1 - lam) * self.view(mem, g_view)
                    v2 = lam * v2 + (1 - lam) * self.view(mem, g_view)
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / total))
                with self.meter.step():
                    loss = net(v1, v2)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                lv = float(loss.detach())
                if not math.isfinite(lv):
                    raise ConfigError(f"training diverged in task {p + 1} at step {step + 1} (loss {lv}); "
                                      f"lower --lr")
                step += 1
                sums["loss"] += lv
                sums["bwd_flops"] += self.meter.bwd_flops
                sums["fwd_flops"] += self.meter.fwd_flops
                sums["saved"] += self.meter.saved_bytes
                sums["saved_peak"] = max(sums["saved_peak"], self.meter.saved_bytes)
                sums["trainable"] += sum(q.numel() * q.element_size() for q in self.learner.parameters()
                                         if q.requires_grad)
                if order is not None:
                    target = frozen_target(step, total, len(self.layers), cfg.freeze_ratio, cfg.freeze_ramp)
                    have = set(frozen_indices(self.layers))
                    if target > len(have):
                        new = ORDERS[order][0](scores, have, target - len(have))
                        for i in new:
                            freeze(self.layers[i])
                        frozen_log.append([step, *new])
                        net = self._wrap()   # DDP must only wait for parameters that get gradients
                bar.update(1)
                bar.set_postfix(loss=f"{lv:.3f}", frozen=len(frozen_indices(self.layers)))
            epoch += 1
        bar.close()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        final = frozen_indices(self.layers)
        for layer in self.layers:
            unfreeze(layer)
        pbytes = param_bytes(self.learner)
        self.decisions.append({"task": p, "steps": total, "scores": [float(s) for s in scores], "order": order,
                               "frozen_at": frozen_log, "final_frozen": final})
        self.costs.append({
            "task": p, "steps": total, "epochs": epoch, "time_s": elapsed, "cpu_s": cpu, "overhead_s": overhead,
            "overhead_cpu_s": overhead_cpu,
            "loss": sums["loss"] / total, "bwd_flops": sums["bwd_flops"], "fwd_flops": sums["fwd_flops"],
            "saved_bytes_mean": sums["saved"] / total, "saved_bytes_peak": sums["saved_peak"],
            "param_bytes": pbytes, "trainable_param_bytes_mean": sums["trainable"] / total,
            "buffer_bytes": buffer_bytes,
            "memory_bytes_mean": pbytes + sums["saved"] / total + buffer_bytes,
            "memory_bytes_peak": pbytes + sums["saved_peak"] + buffer_bytes,
        })

    def _correlations(self, p: int, idx: torch.Tensor, images: torch.Tensor) -> list[float]:
        """r_l of eq 5.6 before task p: buffer subspaces, a probe gradient on the new task."""
        cfg = self.cfg
        g = _gen(cfg.seed, p, 5)
        mem = self.buffer.indices()
        buffer_batches = [self.view.plain(images[mem[i:i + 256]]).to(self.device) for i in range(0, len(mem), 256)]
        probe = []
        for _ in range(cfg.probe_batches):
            batch = images[idx[torch.randperm(len(idx), generator=g)[:cfg.batch_size]]].to(self.device)
            probe.append((self.view(batch, g), self.view(batch, g)))
        self.learner.train()
        r = torch.tensor(task_correlations(self.learner, self.layers, buffer_batches, probe, cfg.energy, g),
                         dtype=torch.float64)
        if self.world > 1:
            dist.broadcast(r, 0)
        return r.tolist()

    def evaluate(self) -> list[float]:
        return task_accuracies(self.learner.backbone, self.data, self.view.plain, self.device, self.cfg.eval,
                               self.cfg.knn_k, self.cfg.knn_t)

    # -- checkpoints ----------------------------------------------------------------------------
    def heads_state(self) -> dict:
        return {k: v.detach().cpu() for k, v in self.learner.state_dict().items() if not k.startswith("backbone.")}

    def checkpoint(self) -> dict:
        from ..train.checkpoint import make_checkpoint, state_checksum
        cfg = self.cfg
        ckpt = make_checkpoint(self.learner.backbone, model_cfg=self.model_cfg, quant={"mode": "fp"},
                               data={"dataset": cfg.dataset, "mean": self.info.mean, "std": self.info.std},
                               epoch=self.completed, history=self.costs, args=asdict(cfg))
        heads = self.heads_state()
        ckpt["continual"] = {
            "format": CONTINUAL_FORMAT, "version": CONTINUAL_VERSION, "completed": self.completed,
            "tasks": self.split, "layers": [l.name for l in self.layers],
            "heads": heads, "heads_sha256": state_checksum(heads),
            "buffer": self.buffer.state_dict(), "acc": self.acc, "decisions": self.decisions,
            "costs": self.costs, "rng": {"torch": torch.get_rng_state()},
        }
        return ckpt

    def save(self, path: Path) -> dict:
        ckpt = self.checkpoint()
        buf = io.BytesIO()
        torch.save(ckpt, buf)
        atomic_write_bytes(path, buf.getvalue())
        return ckpt

    def restore(self, path: Path) -> None:
        ckpt = load_continual(path)
        c = ckpt["continual"]
        saved, now = ckpt.get("args") or {}, asdict(self.cfg)
        diff = [f"{k} {saved.get(k)!r} -> {now[k]!r}" for k in RUN_DEFINING if saved.get(k) != now[k]]
        if diff:
            raise CheckpointError(f"--resume: {path} was trained with other settings ({'; '.join(diff)}); "
                                  f"resume with the same settings, or start a new run with another --out")
        missing, unexpected = self.learner.load_state_dict(
            {**{f"backbone.{k}": v for k, v in ckpt["state_dict"].items()}, **c["heads"]}, strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{path}: the heads do not fit a {self.cfg.learner} learner "
                                  f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        self.buffer.load_state_dict(c["buffer"])
        self.acc = [list(map(float, r)) for r in c["acc"]]
        self.decisions, self.costs = list(c["decisions"]), list(c["costs"])
        self.completed = int(c["completed"])
        torch.set_rng_state(c["rng"]["torch"])

    def result(self) -> dict:
        T = len(self.split)
        out = {"config": asdict(self.cfg), "tasks": self.split, "layers": [l.name for l in self.layers],
               "completed": self.completed, "acc": self.acc, "decisions": self.decisions, "costs": self.costs,
               "world_size": self.world}
        done = self.completed == len(self.phases) and self.acc
        if done and self.method.joint:
            out["accuracy"], out["forgetting"] = sum(self.acc[-1]) / T, None
        elif done:
            out["accuracy"], out["forgetting"] = average_accuracy(self.acc), forgetting(self.acc)
        steps = sum(c["steps"] for c in self.costs) or 1
        out["totals"] = {
            "time_s": sum(c["time_s"] for c in self.costs),
            "cpu_s": sum(c["cpu_s"] for c in self.costs),
            "overhead_cpu_s": sum(c.get("overhead_cpu_s", 0.0) for c in self.costs),
            "bwd_flops": sum(c["bwd_flops"] for c in self.costs),
            "memory_bytes_mean": sum(c["memory_bytes_mean"] * c["steps"] for c in self.costs) / steps,
            "memory_bytes_peak": max((c["memory_bytes_peak"] for c in self.costs), default=0),
            "saved_bytes_mean": sum(c["saved_bytes_mean"] * c["steps"] for c in self.costs) / steps,
            "steps": steps,
        }
        return out


def load_continual(path: str | os.PathLike) -> dict:
    """A `pesto continual` checkpoint, validated (format, both checksums)."""
    from ..train.checkpoint import load_checkpoint, state_checksum
    ckpt = load_checkpoint(path)
    c = ckpt.get("continual")
    if not isinstance(c, dict) or c.get("format") != CONTINUAL_FORMAT:
        raise CheckpointError(f"{path} is a pesto checkpoint but not one `pesto continual` wrote "
                              f"(no continual section); use another --out")
    if c.get("version") != CONTINUAL_VERSION:
        raise CheckpointError(f"{path}: continual checkpoint version {c.get('version')!r} is not supported "
                              f"(this pesto reads {CONTINUAL_VERSION})")
    if state_checksum(c["heads"]) != c.get("heads_sha256"):
        raise CheckpointError(f"{path}: the learner heads do not match their checksum; the file is corrupt")
    return ckpt


def run_continual(cfg: ContinualConfig) -> dict:
    """Run (or resume) the continual sequence ``cfg`` describes; returns the result dict (rank 0)."""
    run = _Run(cfg)
    out = Path(cfg.out) if cfg.out else None
    if cfg.resume and out is not None and out.is_file():
        run.restore(out)
    phases = run.phases
    if run.rank == 0:
        tqdm.write(f"pesto continual: {cfg.method} with {cfg.learner} on {cfg.model}, {cfg.dataset} split "
                   f"{'/'.join(','.join(map(str, t)) for t in run.split)}, {len(run.layers)} layers, "
                   f"buffer {cfg.buffer_size}, freezing ratio {cfg.freeze_ratio}, world size {run.world}, "
                   f"device {run.device}" + (f", resuming after task {run.completed}" if run.completed else ""))
    try:
        for p in range(run.completed, len(phases)):
            if cfg.stop_after is not None and p >= cfg.stop_after:
                break
            run.train_phase(p, phases[p])
            if run.method.replay:
                run.buffer.add_task(p, run.data.train_idx[p], cfg.seed)
            run.completed = p + 1
            if run.rank == 0:
                row = run.evaluate()
                run.acc.append(row)
                c, d = run.costs[-1], run.decisions[-1]
                tqdm.write(f"task {p + 1}/{len(phases)}: acc " + " ".join(f"{a:.1f}" for a in row)
                           + f"  ({c['steps']} steps, {c['time_s']:.0f} s, frozen {d['final_frozen']})")
                if out is not None:
                    run.save(out)
            if run.world > 1:
                dist.barrier()
    finally:
        if run.world > 1 and run.owns_group:
            dist.destroy_process_group()
    return run.result() if run.rank == 0 else {}
