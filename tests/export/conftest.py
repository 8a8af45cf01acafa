"""Shared fixtures of the export tests: small ternary models with real group sparsity, real
Fashion-MNIST images, and one exported ResNet-20 artifact per session."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from pesto.models import build_model
from pesto.quant import latent_weight, ternarize_model, ternary_layers

FMNIST_MEAN, FMNIST_STD = (0.2860,), (0.3530,)


def sparsify(model, group_fraction=0.4, seed=0):
    """Zero a random fraction of each ternary layer's PE groups (as group-lasso training would),
    and give BN non-trivial statistics, so indexers, skipping and folding are all exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, m, cg in ternary_layers(model):
            w = latent_weight(m)
            n, c = w.shape[:2]
            groups = -(-c // cg)
            dead = torch.rand(n, groups, generator=g) < group_fraction
            mask = dead.repeat_interleave(cg, dim=1)[:, :c]
            w[mask.view(n, c, *([1] * (w.dim() - 2))).expand_as(w)] = 0
        for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.2, 0.2, generator=g)
            bn.running_var.uniform_(0.5, 2.0, generator=g)
            bn.weight.uniform_(0.5, 1.5, generator=g)
            bn.bias.uniform_(-0.2, 0.2, generator=g)
    return model.eval()


def ternary_resnet(name="resnet20", seed=0, cg=16, **kw):
    torch.manual_seed(seed)
    kw = {"in_channels": 1, "num_classes": 10, "input_size": 28} | kw
    return sparsify(ternarize_model(build_model(name, **kw), cg=cg), seed=seed)


@pytest.fixture(scope="session")
def fmnist():
    """(train images, test images, test labels) of real Fashion-MNIST, uint8 (N, 1, 28, 28)."""
    from pesto.data import load_splits
    train, test = load_splits("fashion-mnist", augment=False)
    return train.images.numpy(), test.images.numpy(), test.labels.numpy()


@pytest.fixture(scope="session")
def resnet20():
    return ternary_resnet("resnet20")


@pytest.fixture(scope="session")
def resnet20_artifact(resnet20, fmnist):
    from pesto.export import export_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export_model(resnet20, fmnist[0][:64], mean=FMNIST_MEAN, std=FMNIST_STD, verify=16)


@pytest.fixture(scope="session")
def make_resnet():
    """ternary_resnet(name, seed, cg, **build_model kwargs) as a fixture (test files import nothing)."""
    return ternary_resnet
