"""AST-GC (Chapter 3): K group-sparse ternary sub-nets that share one set of weights, in one run.

    pesto train --mode ast --subnets 0.3,0.5,0.7               # AST + GC, non-disjoint (defaults)
    pesto train --mode ast --subnets 0.3,0.5,0.7 --no-gc       # AST without gradient correction
    pesto train --mode ast --subnets 0.3,0.5,0.7 --joint       # joint training (eq 3.3), the baseline
    pesto train --mode ast --subnets 0.3,0.5,0.7 --scheme cs   # completely-subset sub-nets (table 8)
    pesto train --mode ast --pattern nm --cg 4 --subnets 3:4,2:4,1:4          # N:M over PE groups
    pesto train --mode ast --pattern nm-element --subnets 2:4,1:4,1:8,1:16    # N:M over weights

One step (alternating, section 3.3): sub-net k = step mod K is active; its forward is
alpha_k * codes * mask_k with its own BatchNorm set (pesto.prune.subnets); the straight-through
gradient reaches only its groups; under the completely-subset or non-disjoint scheme its mask
follows GraNet's prune-and-regrow at group granularity (pesto.prune.regrow); within an inner
group of K consecutive steps, the gradient of every shared tensor is projected off the previous
sub-net's gradient when the two conflict (eq 3.4, gradient correction); after the optimizer step
every weight outside the sub-net's groups is put back, so an inactive group gets no update (no
momentum, no weight decay either), and the BatchNorm sets of the other sub-nets get no gradient.

Masks (observation 2): sub-net k's sparsity follows the schedule from ``sparsity_init`` to its
target between ``prune_start`` and ``prune_end`` (fractions of the run), raised every
``prune_every`` steps at times staggered by k * prune_every / K, so the sub-nets never change
their masks together while they keep switching every step. At each of its updates: global
magnitude pruning of its groups to the scheduled count (group RMS, at least one group per layer),
then per layer prune-and-regrow of a fraction that decays from ``regrow`` to 0 by cosine
(weakest groups out, groups with the largest gradient norm in). Completely subset: only the
densest sub-net regrows; sub-net k > 0 keeps its count inside sub-net k-1's mask by magnitude.

Gradient correction details (what the text leaves open; the authors' code does the same):
the inner product is taken per shared tensor (every parameter outside the switchable BNs), the
reference is the previous sub-net's uncorrected gradient, and the projection is taken inside the
active sub-net's groups (the reference restricted to them), so the corrected gradient stays in
the sub-net and is exactly orthogonal to the reference. The fraction of negative inner products
is logged with or without correction (figure 13).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from .. import metrics
from ..errors import ConfigError
from ..prune.regrow import SCHEDULES, global_prune, nm_update, prune_and_regrow, restrict, schedule
from ..prune.subnets import SubnetMasks, make_subnets, select_subnet, switch_batchnorms
from ..quant.ternary import ternary_layers, ternary_param
from .methods import Method, StepStats, register

PATTERNS = {"group": "any PE groups, global magnitude budget", "nm": "N of every M consecutive PE groups of "
            "an output channel", "nm-element": "N of every M consecutive input channels of a weight (GPU N:M)"}
SCHEMES = {"nd": "non-disjoint: every sub-net prunes and regrows on its own",
           "cs": "completely subset: sparser sub-nets inside denser ones"}


@dataclass(frozen=True)
class SubnetSpec:
    """One sub-net's target: its name, target group sparsity and, for N:M patterns, (N, M)."""

    name: str
    target: float
    nm: tuple[int, int] | None = None


def parse_subnets(pattern: str, subnets) -> list[SubnetSpec]:
    """Sub-net targets -> specs. pattern "group": fractions in [0, 1); "nm"/"nm-element": "N:M"
    (keep N of every M, NVIDIA's convention; the seed's table 12 names the pruned count instead)."""
    if pattern not in PATTERNS:
        raise ConfigError(f"unknown pattern {pattern!r}; use one of {', '.join(PATTERNS)}")
    values = list(subnets or [])
    if not values:
        raise ConfigError("--mode ast needs at least one sub-net (K = 0): give their targets, e.g. "
                          "--subnets 0.3,0.5,0.7 (group sparsities) or --pattern nm --subnets 3:4,2:4")
    specs = []
    for v in values:
        if pattern == "group":
            try:
                s = float(v)
            except (TypeError, ValueError):
                raise ConfigError(f"sub-net target {v!r} is not a group sparsity; give fractions in [0, 1) "
                                  f"such as 0.3,0.5,0.7 (or --pattern nm with N:M targets)") from None
            if not 0.0 <= s < 1.0 or not math.isfinite(s):
                raise ConfigError(f"sub-net group sparsity {s:g} is out of [0, 1); a sub-net keeps at least "
                                  f"one group (e.g. 0.3,0.5,0.7)")
            specs.append(SubnetSpec(f"s{round(100 * s, 2):g}", s))
        else:
            text = str(v)
            n, sep, m = text.partition(":")
            if not sep or not n.strip().isdigit() or not m.strip().isdigit():
                raise ConfigError(f"sub-net target {v!r}: --pattern {pattern} takes N:M (keep N of every M), "
                                  f"e.g. 2:4")
            n, m = int(n), int(m)
            if not 1 <= n <= m:
                raise ConfigError(f"sub-net target {v!r}: N:M needs 1 <= N <= M (N is the number kept)")
            specs.append(SubnetSpec(f"n{n}m{m}", 1.0 - n / m, (n, m)))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"sub-net targets must be distinct, got {values}")
    if len(specs) > 16:
        raise ConfigError(f"at most 16 sub-nets (what an artifact holds), got {len(specs)}")
    return specs


@torch.no_grad()
def gradient_correction(g: torch.Tensor, ref: torch.Tensor, apply: bool = True) -> float:
    """Eq 3.4 in place: if g . ref < 0, g <- g - (g . ref / ||ref||^2) ref. Returns g . ref (before)."""
    d = float(torch.dot(g.flatten(), ref.flatten()))
    if d < 0 and apply:
        g.sub_(ref, alpha=d / float(ref.pow(2).sum()))
    return d


def canonical(pattern: str, specs: list[SubnetSpec]) -> list:
    return [s.target if pattern == "group" else f"{s.nm[0]}:{s.nm[1]}" for s in specs]


@register
class AST(Method):
    name = "ast"
    summary = "K ternary sub-nets sharing one set of codes: alternating sparse training + gradient correction"
    ternary = True
    options = ("subnets", "scheme", "gc", "pattern", "joint", "sparsity_init", "prune_every", "prune_start",
               "prune_end", "regrow", "sparsity_schedule")
    run_defining = options + ("epochs",)   # the mask schedule spans the whole run

    # -- configuration -------------------------------------------------------------------
    @classmethod
    def validate(cls, cfg) -> None:
        super().validate(cfg)
        specs = parse_subnets(cfg.pattern, cfg.subnets)
        if cfg.scheme not in SCHEMES:
            raise ConfigError(f"unknown scheme {cfg.scheme!r}; use nd (non-disjoint, the default) or cs "
                              f"(completely subset)")
        if cfg.scheme == "cs":
            if cfg.pattern != "group":
                raise ConfigError("the completely-subset scheme is for --pattern group; N:M sub-nets train "
                                  "with the non-disjoint scheme (--scheme nd)")
            t = [s.target for s in specs]
            if any(b <= a for a, b in zip(t, t[1:])):
                raise ConfigError(f"--scheme cs nests each sub-net inside the one before it: give the sparsities "
                                  f"in increasing order (got {', '.join(f'{v:g}' for v in t)})")
        if cfg.joint and cfg.gc:
            raise ConfigError("gradient correction acts between consecutive sub-nets of alternating training; "
                              "joint training (--joint) updates every sub-net in every step: drop --gc")
        if not 0.0 <= cfg.sparsity_init < 1.0:
            raise ConfigError(f"--sparsity-init {cfg.sparsity_init:g} is out of [0, 1)")
        if cfg.pattern == "group" and cfg.sparsity_init > min(s.target for s in specs):
            raise ConfigError(f"--sparsity-init {cfg.sparsity_init:g} is above the lowest sub-net target "
                              f"{min(s.target for s in specs):g}; a sub-net's sparsity only grows")
        if int(cfg.prune_every) < 1:
            raise ConfigError(f"--prune-every (the mask update period, in steps) must be >= 1, got {cfg.prune_every}")
        if not 0.0 <= cfg.prune_start < cfg.prune_end <= 1.0:
            raise ConfigError(f"need 0 <= --prune-start < --prune-end <= 1 (fractions of the run), got "
                              f"{cfg.prune_start:g}, {cfg.prune_end:g}")
        if not 0.0 <= cfg.regrow < 1.0:
            raise ConfigError(f"--regrow (the initial prune-and-regrow fraction) must be in [0, 1), got {cfg.regrow:g}")
        if cfg.sparsity_schedule not in SCHEDULES:
            raise ConfigError(f"unknown sparsity schedule {cfg.sparsity_schedule!r}; use {', '.join(SCHEDULES)}")
        cfg.subnets = canonical(cfg.pattern, specs)

    @classmethod
    def quant_extra(cls, cfg) -> dict:
        specs = parse_subnets(cfg.pattern, cfg.subnets)
        return {"subnets": [s.name for s in specs], "targets": [s.target for s in specs],
                "granularity": "element" if cfg.pattern == "nm-element" else "group"}

    @classmethod
    def prepare(cls, model: nn.Module, quant: dict) -> nn.Module:
        super().prepare(model, quant)
        return make_subnets(model, list(quant["subnets"]), quant.get("granularity", "group"))

    # -- one run -------------------------------------------------------------------------
    def __init__(self, model: nn.Module, cfg=None, total_steps: int = 0):
        super().__init__(model, cfg, total_steps)
        self.specs = parse_subnets(cfg.pattern, cfg.subnets)
        self.K = len(self.specs)
        if list(model.subnet_names) != [s.name for s in self.specs]:
            raise ConfigError(f"the model's sub-nets {model.subnet_names} are not {[s.name for s in self.specs]}")
        self.joint = bool(cfg.joint)
        self.gc = (not self.joint) if cfg.gc is None else bool(cfg.gc)
        self.scheme, self.pattern = cfg.scheme, cfg.pattern
        self.masked = [(name, m, ternary_param(m)) for name, m, _ in ternary_layers(model)]
        self.total_groups = sum(p.masks[0].numel() for _, _, p in self.masked)
        in_bn = {id(prm) for _, bn in switch_batchnorms(model) for prm in bn.parameters()}
        self.shared = [(n, prm) for n, prm in model.named_parameters() if id(prm) not in in_bn]
        self.keep_of = {f"{name}.parametrizations.weight.original": p for name, _, p in self.masked}
        self.bn_params = [[prm for _, bn in switch_batchnorms(model) for prm in bn.bns[k].parameters()]
                          for k in range(self.K)]
        self.t0 = int(round(cfg.prune_start * total_steps))
        # the window ends where every sub-net is still active at least once afterwards (its final update)
        self.t1 = max(min(int(round(cfg.prune_end * total_steps)), total_steps - self.K), self.t0 + 1)
        self.period = int(cfg.prune_every)
        self.offsets = [int(round(k * self.period / self.K)) for k in range(self.K)]
        for spec in self.specs:   # an N:M whose M does not fit a layer is refused now, naming the layer
            if spec.nm:
                for name, _, p in self.masked:
                    p.grouper.runs(p.masks[0], spec.nm[1], f"layer {name!r}")
        self.find_unused_parameters = not self.joint and self.K > 1
        # state (state_dict): mask schedule, GC memory, logs
        self.last_period = [-1] * self.K
        self.trained = [0] * self.K
        self.prev: dict[str, torch.Tensor] = {}
        self.prev_step = -1
        self.gc_trace: list[list[int]] = []    # [step, sub-net, negative tensors, tensors, model dot < 0]
        self.mask_trace: list[list[float]] = []  # [step, sub-net, mask group sparsity]
        self.epoch_counts = [0, 0, 0, 0]        # negative tensors, tensors, negative model dots, dots
        self.step, self.active, self.due = 0, [0], []
        self._grads: dict[int, list[torch.Tensor | None]] = {}
        self._snap = []
        self._last_neg = None

    def describe(self) -> str:
        c = self.cfg
        how = "joint (eq 3.3)" if self.joint else f"alternating, GC {'on' if self.gc else 'off'}"
        return (f"Cg {c.cg}, {self.K} sub-nets {', '.join(s.name for s in self.specs)} ({how}, pattern "
                f"{self.pattern}, scheme {self.scheme}), masks every {self.period} steps from "
                f"{c.sparsity_init:g} over steps {self.t0}..{self.t1} ({c.sparsity_schedule}), regrow {c.regrow:g}")

    # schedule ---------------------------------------------------------------------------
    def _period(self, k: int, t: int) -> int:
        """Index of sub-net k's mask update due at step t (-1: none yet); one final update at the end."""
        start = self.t0 + self.offsets[k]
        if t < start:
            return -1
        if t >= self.t1:
            return max(0, math.ceil((self.t1 - start) / self.period))
        return (t - start) // self.period

    def sparsity_at(self, k: int, t: int) -> float:
        """Sub-net k's scheduled group sparsity at step t (group pattern)."""
        return schedule(self.cfg.sparsity_schedule, self.cfg.sparsity_init, self.specs[k].target, t, self.t0, self.t1)

    def regrow_at(self, t: int) -> float:
        """The prune-and-regrow fraction at step t: regrow -> 0 by cosine over the pruning window."""
        return schedule("cosine", self.cfg.regrow, 0.0, t, self.t0, self.t1)

    def _set_capture(self, on: bool) -> None:
        for _, _, p in self.masked:
            p.capture, p.captured = on, None

    def _take_grads(self) -> list[torch.Tensor | None]:
        out = [p.captured for _, _, p in self.masked]
        self._set_capture(False)
        return out

    # the step ---------------------------------------------------------------------------
    def begin_step(self, step: int) -> None:
        self.step = step
        self.active = list(range(self.K)) if self.joint else [step % self.K]
        self.due = [k for k in self.active if self._period(k, step) > self.last_period[k]]
        self._grads = {}
        if not self.joint:
            select_subnet(self.model, self.active[0])
            self._set_capture(bool(self.due))

    def loss(self, net, x, y):
        out = net(x)
        ce = F.cross_entropy(out, y)
        return ce, ce, None, out

    def forward_backward(self, net, opt, x, y) -> StepStats:
        if not self.joint:
            stats = super().forward_backward(net, opt, x, y)
            if self.due:
                self._grads[self.active[0]] = self._take_grads()
            return stats
        # joint training (eq 3.3): the sum of every sub-net's loss; one backward per sub-net, the
        # gradients add up in .grad (each masked to its sub-net by the straight-through estimator);
        # under DDP only the last backward all-reduces the sum
        opt.zero_grad(set_to_none=True)
        ce_sum, correct = 0.0, 0
        for k in range(self.K):
            select_subnet(self.model, k)
            self._set_capture(k in self.due)
            sync = k == self.K - 1 or not hasattr(net, "no_sync")
            with contextlib.nullcontext() if sync else net.no_sync():
                out = net(x)
                ce = F.cross_entropy(out, y)
                ce.backward()
            if k in self.due:
                self._grads[k] = self._take_grads()
            ce_sum += float(ce.detach())
            correct += int((out.argmax(1) == y).sum())
        return StepStats(ce_sum / self.K, 0.0, correct, self.K * len(y))

    @torch.no_grad()
    def before_update(self, opt) -> None:
        for k in range(self.K):   # the other sub-nets' BatchNorms: no gradient, so no update at all
            if k not in self.active:
                for prm in self.bn_params[k]:
                    prm.grad = None
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            for grads in self._grads.values():   # regrow decisions from the all-reduced gradient
                for g in grads:
                    if g is not None:
                        dist.all_reduce(g)
                        g.div_(dist.get_world_size())
        if not self.joint:
            self._correct(self.step % self.K)
        keep = []
        for _, m, p in self.masked:
            w = m.parametrizations.weight.original
            mask = p.masks[self.active[0]] if not self.joint else p.masks.any(0)
            keep.append((w, w.detach().clone(), p.grouper.expand(mask, w.shape)))
        self._snap = keep

    def _correct(self, pos: int) -> None:
        """Eq 3.4 within the inner group (positions 1..K-1 against the step before); logs conflicts."""
        cur = {n: prm.grad for n, prm in self.shared if prm.grad is not None}
        store = {n: g.detach().clone() for n, g in cur.items()} if pos < self.K - 1 else {}
        if pos > 0 and self.prev and self.prev_step == self.step - 1:
            neg = tot = 0
            total_dot = 0.0
            for n, g in cur.items():
                ref = self.prev.get(n)
                if ref is None:
                    continue
                p = self.keep_of.get(n)
                if p is not None:
                    ref = ref * p.grouper.expand(p.masks[self.active[0]], ref.shape)
                d = gradient_correction(g, ref, apply=self.gc)
                total_dot += d
                tot += 1
                neg += d < 0
            self.gc_trace.append([self.step, self.active[0], neg, tot, int(total_dot < 0)])
            c = self.epoch_counts
            c[0] += neg; c[1] += tot; c[2] += int(total_dot < 0); c[3] += 1
            self._last_neg = neg / max(tot, 1)
        self.prev, self.prev_step = store, (self.step if store else -1)

    @torch.no_grad()
    def after_update(self, opt) -> None:
        for w, before, keep in self._snap:   # weights outside the active groups are put back
            w.copy_(torch.where(keep, w, before))
        self._snap = []
        for k in self.due:
            self.update_masks(k, self.step, self._grads.get(k))
            self.last_period[k] = self._period(k, self.step)
        for k in self.active:
            self.trained[k] += 1
        self._grads = {}

    # masks ------------------------------------------------------------------------------
    def keep_count(self, k: int, t: int) -> int:
        return int(round((1.0 - self.sparsity_at(k, t)) * self.total_groups))

    @torch.no_grad()
    def update_masks(self, k: int, t: int, grads: list | None = None) -> None:
        """Sub-net k's mask update at step t (prune-and-regrow / N:M / completely subset)."""
        ws = [m.parametrizations.weight.original.detach() for _, m, _ in self.masked]
        ps = [p for _, _, p in self.masked]
        masks = [p.masks[k] for p in ps]
        scores = [p.grouper.rms(w) for p, w in zip(ps, ws)]
        grads = grads or [None] * len(ps)
        gnorm = [p.grouper.norms(g) if g is not None else torch.zeros_like(s) for p, g, s in zip(ps, grads, scores)]
        spec, r = self.specs[k], self.regrow_at(t)
        if spec.nm:
            n, m_ = spec.nm
            frac = schedule(self.cfg.sparsity_schedule, 0.0, 1.0, t, self.t0, self.t1)
            new = []
            for p, w, mk, s, g in zip(ps, ws, masks, scores, gnorm):
                out, _ = nm_update(p.grouper.runs(mk, m_), p.grouper.runs(s, m_), p.grouper.runs(g, m_), n, frac, r)
                new.append(p.grouper.unruns(out, w.shape))
        elif self.scheme == "cs" and k > 0:
            new = restrict(masks, [p.masks[k - 1] for p in ps], self.keep_count(k, t), scores)
        else:
            new = global_prune(masks, scores, self.keep_count(k, t))
            new = [prune_and_regrow(mk, s, g, r)[0] for mk, s, g in zip(new, scores, gnorm)]
        for p, mk in zip(ps, new):
            p.masks[k].copy_(mk)
        if self.scheme == "cs":   # keep every sparser sub-net inside the one before it
            for j in range(k + 1, self.K):
                count = sum(int(p.masks[j].sum()) for p in ps)
                for p, mk in zip(ps, restrict([p.masks[j] for p in ps], [p.masks[j - 1] for p in ps], count, scores)):
                    p.masks[j].copy_(mk)
        off = sum(int((~p.masks[k]).sum()) for p in ps)
        self.mask_trace.append([float(t), float(k), off / self.total_groups])

    # reporting --------------------------------------------------------------------------
    def postfix(self, stats: StepStats) -> dict:
        out = {"net": "all" if self.joint else self.specs[self.active[0]].name, "loss": f"{stats.ce:.3f}"}
        if self._last_neg is not None:
            out["neg"] = f"{self._last_neg:.2f}"
        return out

    def epoch_metrics(self, model, test_loader, device) -> dict:
        from .loop import evaluate
        masks = SubnetMasks(model)
        subs = []
        for k, (spec, m) in enumerate(zip(self.specs, metrics.subnet_metrics(model, self.layers))):
            select_subnet(model, k)
            test_loss, test_acc = evaluate(model, test_loader, device)
            subs.append({
                "name": spec.name, "target": spec.target, "nm": list(spec.nm) if spec.nm else None,
                "test_loss": test_loss, "test_acc": test_acc, "images": len(test_loader.dataset),
                "steps": self.trained[k],
                **{key: m[key] for key in ("overall_sparsity", "group_sparsity", "in_group_sparsity",
                                           "compression_rate", "mask_sparsity")},
                "layers": {name: {key: v[key] for key in ("group_sparsity", "layer_sparsity", "mask_sparsity")}
                           for name, v in m["layers"].items()},
            })
        mean = lambda key: sum(s[key] for s in subs) / len(subs)  # noqa: E731
        entry = {"test_loss": mean("test_loss"), "test_acc": mean("test_acc")}
        for key in ("overall_sparsity", "group_sparsity", "in_group_sparsity", "compression_rate"):
            entry[key] = mean(key)
        entry["layers"] = {name: {key: sum(s["layers"][name][key] for s in subs) / len(subs)
                                  for key in ("group_sparsity", "layer_sparsity")} for name in subs[0]["layers"]}
        entry["subnets"] = subs
        entry["overlap"] = {f"{subs[i]['name']}^{subs[j]['name']}": masks.overlap(i, j)
                            for i in range(self.K) for j in range(i + 1, self.K)}
        c = self.epoch_counts
        entry["gc"] = {"enabled": self.gc, "negative_tensor_ratio": c[0] / c[1] if c[1] else None,
                       "negative_model_ratio": c[2] / c[3] if c[3] else None, "pairs": c[3]}
        return entry

    def epoch_report(self, entry: dict) -> str:
        lines = [f"  {s['name']:>7s}: test acc {s['test_acc']:.2f}%  group sparsity {100 * s['group_sparsity']:.1f}% "
                 f"(mask {100 * s['mask_sparsity']:.1f}%, target {100 * s['target']:.1f}%)  "
                 f"comp {s['compression_rate']:.1f}x  {s['steps']} steps" for s in entry["subnets"]]
        g = entry["gc"]
        if g["pairs"]:
            lines.append(f"  inner-group gradient conflicts: {100 * g['negative_model_ratio']:.1f}% of model "
                         f"inner products, {100 * g['negative_tensor_ratio']:.1f}% per tensor "
                         f"({'corrected' if self.gc else 'not corrected'})")
        return "\n".join(lines)

    def on_epoch_end(self, epoch: int) -> None:
        self.epoch_counts = [0, 0, 0, 0]

    def state_dict(self) -> dict:
        return {"last_period": list(self.last_period), "trained": list(self.trained),
                "prev": {n: g.detach().cpu() for n, g in self.prev.items()}, "prev_step": self.prev_step,
                "gc_trace": torch.tensor(self.gc_trace, dtype=torch.int64).reshape(-1, 5),
                "mask_trace": torch.tensor(self.mask_trace, dtype=torch.float64).reshape(-1, 3),
                "epoch_counts": list(self.epoch_counts)}

    def load_state_dict(self, state: dict) -> None:
        self.last_period = [int(v) for v in state["last_period"]]
        self.trained = [int(v) for v in state["trained"]]
        dev = {n: prm.device for n, prm in self.shared}
        self.prev = {n: g.to(dev.get(n, g.device)) for n, g in state["prev"].items()}
        self.prev_step = int(state["prev_step"])
        self.gc_trace = state["gc_trace"].tolist()
        self.mask_trace = state["mask_trace"].tolist()
        self.epoch_counts = [int(v) for v in state["epoch_counts"]]
