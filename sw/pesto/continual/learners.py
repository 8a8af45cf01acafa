"""Self-supervised learners on a pesto zoo backbone: SimSiam (eq 5.1) and Barlow Twins (eq 5.2).

    learner = build_learner("simsiam", "resnet20", in_channels=1, input_size=28)
    loss = learner(view1, view2)          # a scalar; DDP wraps the learner as it is
    feats = learner.backbone(x)           # (N, D) features: the zoo model with its fc replaced by Identity

Heads follow LUMP's configuration (facts from divyam3897/UCL): a 2-layer projection MLP
Linear-BN-ReLU-Linear-BN; SimSiam's predictor is the bottleneck Linear(d, d/4)-BN-ReLU-Linear(d/4, d)
and the loss is the symmetrised negative cosine similarity with stop-gradient; Barlow Twins
standardises each embedding along the batch and penalises (1 - C_ii)^2 and lambda * C_ij^2 (i != j),
lambda = 5e-3 (the squared off-diagonal term of the original paper and of LUMP's code; eq 5.2 as
printed drops the square). LUMP uses d = 2048; the default here is 512, which a CPU can afford.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError


def mlp(d_in: int, d_hidden: int, d_out: int, out_bn: bool) -> nn.Sequential:
    layers = [nn.Linear(d_in, d_hidden), nn.BatchNorm1d(d_hidden), nn.ReLU(inplace=True), nn.Linear(d_hidden, d_out)]
    if out_bn:
        layers.append(nn.BatchNorm1d(d_out))
    return nn.Sequential(*layers)


def build_backbone(model: str, in_channels: int, input_size: int, **kw) -> nn.Module:
    """A zoo model without its classifier: ``fc`` becomes Identity, forward gives the pooled features."""
    from ..models import build_model
    net = build_model(model, in_channels=in_channels, num_classes=10, input_size=input_size, **kw)
    if not isinstance(getattr(net, "fc", None), nn.Linear):
        raise ConfigError(f"{model}: continual learning needs a zoo model that ends in a pooled `fc` "
                          f"classifier (the ResNets: resnet20/32/44/56, resnet18, resnet18-cifar)")
    net.fc = nn.Identity()
    return net


def feature_dim(backbone: nn.Module, in_channels: int, input_size: int) -> int:
    was = backbone.training
    backbone.eval()
    with torch.no_grad():
        d = backbone(torch.zeros(1, in_channels, input_size, input_size)).shape[1]
    backbone.train(was)
    return int(d)


class Learner(nn.Module):
    """backbone -> projector (-> predictor); ``forward(x1, x2)`` is the loss of one pair of views."""

    name = ""

    def __init__(self, backbone: nn.Module, feat_dim: int, proj_dim: int):
        super().__init__()
        self.backbone = backbone
        self.projector = mlp(feat_dim, proj_dim, proj_dim, out_bn=True)

    def loss(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return self.loss(x1, x2)


class SimSiam(Learner):
    name = "simsiam"

    def __init__(self, backbone, feat_dim, proj_dim):
        super().__init__(backbone, feat_dim, proj_dim)
        self.predictor = mlp(proj_dim, max(proj_dim // 4, 1), proj_dim, out_bn=False)

    def loss(self, x1, x2):
        z1, z2 = self.projector(self.backbone(x1)), self.projector(self.backbone(x2))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return -0.5 * (F.cosine_similarity(p1, z2.detach(), dim=-1).mean()
                       + F.cosine_similarity(p2, z1.detach(), dim=-1).mean())


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lam: float = 5e-3) -> torch.Tensor:
    """sum_i (1 - C_ii)^2 + lam * sum_{i != j} C_ij^2, C the batch cross-correlation of the
    standardised embeddings (eq 5.2)."""
    n = z1.shape[0]
    a = (z1 - z1.mean(0)) / (z1.std(0) + 1e-6)
    b = (z2 - z2.mean(0)) / (z2.std(0) + 1e-6)
    c = a.T @ b / n
    on = (torch.diagonal(c) - 1).pow(2).sum()
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on + lam * off


class BarlowTwins(Learner):
    name = "barlowtwins"

    def __init__(self, backbone, feat_dim, proj_dim, lam: float = 5e-3):
        super().__init__(backbone, feat_dim, proj_dim)
        self.lam = lam

    def loss(self, x1, x2):
        return barlow_twins_loss(self.projector(self.backbone(x1)), self.projector(self.backbone(x2)), self.lam)


# name -> (class, one-line description)
LEARNERS: dict[str, tuple[Callable[..., Learner], str]] = {
    "simsiam": (SimSiam, "SimSiam: predictor + stop-gradient, negative cosine similarity (eq 5.1)"),
    "barlowtwins": (BarlowTwins, "Barlow Twins: cross-correlation towards the identity (eq 5.2)"),
}


def check_learner(name: str) -> None:
    if name not in LEARNERS:
        raise ConfigError(f"unknown learner {name!r}; choose one of {', '.join(LEARNERS)}")


def build_learner(name: str, model: str = "resnet20", in_channels: int = 1, input_size: int = 28,
                  proj_dim: int = 512, **model_kw) -> Learner:
    check_learner(name)
    if proj_dim < 4:
        raise ConfigError(f"proj_dim must be >= 4, got {proj_dim}")
    backbone = build_backbone(model, in_channels, input_size, **model_kw)
    return LEARNERS[name][0](backbone, feature_dim(backbone, in_channels, input_size), proj_dim)
