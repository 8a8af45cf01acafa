"""Evaluating continually learned features, and the two metrics of eq 5.10 and 5.11.

Task-incremental evaluation (the setting of section 5.2.1 and of LUMP): the accuracy on task i is
measured among task i's classes only. With the kNN classifier (LUMP's monitor: cosine similarity,
the k = 200 nearest bank features weighted by exp(sim / 0.1)) the memory bank is task i's training
images, so the prediction can only be one of its classes; the linear option fits a softmax
classifier on the same bank's features (full-batch Adam) and tests it on task i's test images.

    A[t][i] = accuracy on task i after learning tasks 0..t (all i, so the whole matrix is known)
    accuracy   = mean_i A[T-1][i]                                          (eq 5.10)
    forgetting = mean_{i < T-1} ( max_{t >= i} A[t][i] - A[T-1][i] )      (eq 5.11, as LUMP computes it)
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError


@torch.no_grad()
def extract(backbone: nn.Module, images: torch.Tensor, view: Callable, device, batch: int = 512) -> torch.Tensor:
    """L2-normalised features of uint8 images (eval mode), on the CPU."""
    was = backbone.training
    backbone.eval()
    out = []
    for i in range(0, len(images), batch):
        out.append(F.normalize(backbone(view(images[i:i + batch]).to(device)).float(), dim=1).cpu())
    backbone.train(was)
    return torch.cat(out) if out else torch.zeros(0)


def knn_predict(feats: torch.Tensor, bank: torch.Tensor, bank_labels: torch.Tensor, k: int = 200,
                t: float = 0.1) -> torch.Tensor:
    """Weighted kNN (InstDisc / LUMP): class scores sum exp(sim / t) over the k most similar bank rows."""
    classes, labels = torch.unique(bank_labels, return_inverse=True)
    k = min(k, len(bank))
    sim = feats @ bank.T
    w, idx = sim.topk(k, dim=1)
    w = (w / t).exp()
    scores = torch.zeros(len(feats), len(classes)).scatter_add_(1, labels[idx], w)
    return classes[scores.argmax(1)]


def linear_predict(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, steps: int = 200,
                   lr: float = 0.05, seed: int = 0) -> torch.Tensor:
    """A softmax classifier on frozen features (full-batch Adam, no weight decay)."""
    classes, y = torch.unique(train_y, return_inverse=True)
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(train_x.shape[1], len(classes))
    with torch.no_grad():
        lin.weight.copy_(0.01 * torch.randn(lin.weight.shape, generator=g))
        lin.bias.zero_()
    opt = torch.optim.Adam(lin.parameters(), lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(lin(train_x), y).backward()
            opt.step()
    with torch.no_grad():
        return classes[lin(test_x).argmax(1)]


EVALUATIONS = ("knn", "linear")


def task_accuracies(backbone: nn.Module, data, view: Callable, device, how: str = "knn", k: int = 200,
                    t: float = 0.1) -> list[float]:
    """Accuracy (%) on every task of ``data`` (a TaskData), task-incremental."""
    if how not in EVALUATIONS:
        raise ConfigError(f"unknown evaluation {how!r}; choose one of {', '.join(EVALUATIONS)}")
    accs = []
    for bank_idx, test_idx in zip(data.bank_idx, data.test_idx):
        bank = extract(backbone, data.train_images[bank_idx], view, device)
        test = extract(backbone, data.test_images[test_idx], view, device)
        bank_y, test_y = data.train_labels[bank_idx], data.test_labels[test_idx]
        pred = knn_predict(test, bank, bank_y, k, t) if how == "knn" else linear_predict(bank, bank_y, test)
        accs.append(100.0 * float((pred == test_y).float().mean()))
    return accs


def _check_matrix(acc: list[list[float]]) -> int:
    T = len(acc)
    if T == 0 or any(len(row) != T for row in acc):
        raise ConfigError(f"the accuracy matrix must be T x T (row t: accuracies on every task after "
                          f"task t), got rows of lengths {[len(r) for r in acc]}")
    return T


def average_accuracy(acc: list[list[float]]) -> float:
    """Eq 5.10: the mean final accuracy over all tasks."""
    T = _check_matrix(acc)
    return sum(acc[T - 1]) / T


def forgetting(acc: list[list[float]]) -> float | None:
    """Eq 5.11: mean over the tasks before the last of (best accuracy since learned - final)."""
    T = _check_matrix(acc)
    if T < 2:
        return None
    return sum(max(acc[t][i] for t in range(i, T)) - acc[T - 1][i] for i in range(T - 1)) / (T - 1)
