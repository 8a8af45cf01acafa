"""Prune-and-regrow on groups (GraNet-style, Chapter 3.3.3), N:M selection and the schedules.

Pure functions on masks and per-group scores (any Grouper's groups: PE groups or elements):

    schedule(kind, v0, v1, t, t0, t1)   v0 -> v1 between steps t0 and t1: "cosine" (the seed's
                                        wording) or "cubic" (GraNet's gradual-pruning ramp, what
                                        the authors' code runs)
    global_prune(masks, scores, keep)   keep the `keep` best-scoring active groups over all layers
                                        (eq 3.1 at group granularity); never grows a mask
    prune_and_regrow(mask, score, grad, fraction)
                                        within one layer: drop the floor(fraction * active) weakest
                                        active groups, regrow as many inactive groups with the
                                        largest gradient norm (eq 3.2); the count is unchanged
    restrict(mask, parent, count, scores)
                                        the completely-subset rule: a mask inside its parent
    nm_update(...)                      N:M: runs of M groups either dense or keeping their N best;
                                        a scheduled fraction of the runs is N:M, plus
                                        prune-and-regrow of whole runs (the authors' N:M scheme)

Ties are broken by position (stable sorts), so a run is deterministic: resuming and DDP ranks
take the same decisions.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError


def cosine(v0: float, v1: float, u: float) -> float:
    """v0 at u = 0 to v1 at u = 1 along half a cosine."""
    return v1 + (v0 - v1) * (1 + math.cos(math.pi * u)) / 2


def cubic(v0: float, v1: float, u: float) -> float:
    """Zhu & Gupta / GraNet: v1 + (v0 - v1) * (1 - u)**3 (fast first, slow at the end)."""
    return v1 + (v0 - v1) * (1 - u) ** 3


SCHEDULES = {"cosine": cosine, "cubic": cubic}


def schedule(kind: str, v0: float, v1: float, t: float, t0: float, t1: float) -> float:
    """The value at step t of a ramp from v0 (t <= t0) to v1 (t >= t1)."""
    if kind not in SCHEDULES:
        raise ConfigError(f"unknown schedule {kind!r}; use one of {', '.join(SCHEDULES)}")
    u = 1.0 if t1 <= t0 else (t - t0) / (t1 - t0)
    if u <= 0:
        return v0
    if u >= 1:
        return v1
    return SCHEDULES[kind](v0, v1, u)


def _order(scores: torch.Tensor, descending: bool) -> torch.Tensor:
    return torch.sort(scores, descending=descending, stable=True).indices


@torch.no_grad()
def global_prune(masks: list[torch.Tensor], scores: list[torch.Tensor], keep: int,
                 min_per_layer: int = 1) -> list[torch.Tensor]:
    """Keep the ``keep`` highest-scoring active groups across all layers (the others off).

    Only removes: a mask with no more than ``keep`` active groups comes back unchanged. Every
    layer keeps at least ``min_per_layer`` of its active groups (a layer with none computes
    nothing). scores are comparable across layers (the groups' RMS).
    """
    active = sum(int(m.sum()) for m in masks)
    if active <= keep:
        return [m.clone() for m in masks]
    on = torch.cat([m.flatten() for m in masks])
    flat = torch.cat([s.flatten().float() for s in scores])
    chosen = torch.zeros(flat.numel(), dtype=torch.bool)
    offsets = [0]
    for m in masks:
        offsets.append(offsets[-1] + m.numel())
    for i, m in enumerate(masks):  # the floor: each layer's best active groups first
        k = min(min_per_layer, int(m.sum()))
        if k:
            idx = offsets[i] + torch.nonzero(on[offsets[i]:offsets[i + 1]]).flatten()
            chosen[idx[_order(flat[idx], True)[:k]]] = True
    rest = max(keep - int(chosen.sum()), 0)
    idx = torch.nonzero(on & ~chosen).flatten()
    chosen[idx[_order(flat[idx], True)[:rest]]] = True
    return [chosen[offsets[i]:offsets[i + 1]].reshape(m.shape) for i, m in enumerate(masks)]


@torch.no_grad()
def prune_and_regrow(mask: torch.Tensor, score: torch.Tensor, grad: torch.Tensor,
                     fraction: float) -> tuple[torch.Tensor, int]:
    """(new mask, groups moved) of one layer: the floor(fraction * active) lowest-score active
    groups go, as many of the then inactive groups with the largest ``grad`` (the norm of the
    loss gradient over the group) come back. A just-dropped group may come straight back."""
    n = int(fraction * int(mask.sum()))
    if n <= 0:
        return mask.clone(), 0
    flat, s, g = mask.flatten().clone(), score.flatten(), grad.flatten()
    act = torch.nonzero(flat).flatten()
    drop = act[_order(s[act].float(), False)[:n]]
    flat[drop] = False
    idle = torch.nonzero(~flat).flatten()
    grow = idle[_order(g[idle].float(), True)[:n]]
    flat[grow] = True
    return flat.reshape(mask.shape), n


@torch.no_grad()
def restrict(masks: list[torch.Tensor], parents: list[torch.Tensor], count: int,
             scores: list[torch.Tensor]) -> list[torch.Tensor]:
    """Completely subset: masks inside their parents, with ``count`` active groups (at most the
    parents' count): what the masks hold inside the parents stays, the best-scoring other groups
    of the parents fill up to ``count``, the weakest go beyond it."""
    inside = [m & p for m, p in zip(masks, parents)]
    count = min(count, sum(int(p.sum()) for p in parents))
    have = sum(int(m.sum()) for m in inside)
    if have > count:
        return global_prune(inside, scores, count, min_per_layer=0)
    if have == count:
        return inside
    # fill: rank the parents' groups with the kept ones first
    bonus = [torch.where(m, torch.full_like(s, math.inf), s) for m, s in zip(inside, scores)]
    return global_prune([p.clone() for p in parents], bonus, count, min_per_layer=0)


@torch.no_grad()
def nm_keep(runs_score: torch.Tensor, n: int) -> torch.Tensor:
    """bool (R, M): the n best-scoring groups of every run."""
    order = torch.sort(runs_score.float(), dim=1, descending=True, stable=True).indices
    keep = torch.zeros_like(runs_score, dtype=torch.bool)
    keep.scatter_(1, order[:, :n], True)
    return keep


@torch.no_grad()
def nm_update(runs_mask: torch.Tensor, runs_score: torch.Tensor, runs_grad: torch.Tensor, n: int,
              sparse_fraction: float, regrow_fraction: float) -> tuple[torch.Tensor, int]:
    """One N:M update of one layer, in run form (R, M). Returns (new mask, runs moved).

    A run is either dense (all M on) or N:M (its N best groups on). First at least
    round(sparse_fraction * R) runs become N:M (the dense runs that lose the least score first),
    then floor(regrow_fraction * dense runs) more dense runs become N:M and as many N:M runs with
    the largest gradient over their dropped groups turn dense again. At sparse_fraction 1 every
    run is N:M and nothing moves."""
    r, m = runs_mask.shape
    if not 1 <= n <= m:
        raise ConfigError(f"N:M needs 1 <= N <= M, got {n}:{m}")
    keep = nm_keep(runs_score, n)
    sparse = runs_mask.sum(1) < m
    loss = (runs_score.float() * ~keep).sum(1)           # what making a run N:M drops
    want = min(r, round(sparse_fraction * r))
    if int(sparse.sum()) < want:
        dense = torch.nonzero(~sparse).flatten()
        sparse[dense[_order(loss[dense], False)[:want - int(sparse.sum())]]] = True
    moved = int(regrow_fraction * int((~sparse).sum()))
    if moved and want < r:
        dense = torch.nonzero(~sparse).flatten()
        newly = dense[_order(loss[dense], False)[:moved]]
        back_from = torch.nonzero(sparse).flatten()
        back_from = back_from[~torch.isin(back_from, newly)]
        gain = (runs_grad.float() * ~keep).sum(1)
        back = back_from[_order(gain[back_from], True)[:moved]]
        sparse[newly] = True
        sparse[back] = False
    else:
        moved = 0
    out = torch.where(sparse[:, None], keep, torch.ones_like(keep))
    return out, moved
