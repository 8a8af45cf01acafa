"""Named training recipes: the seed's settings (Chapter 2.3.1) plus small CPU recipes.

A recipe is a dict of TrainConfig fields; every field can be overridden on the command line.
"""

from __future__ import annotations

from ..errors import ConfigError

RECIPES: dict[str, dict] = {
    # CIFAR-10, ResNet-20/32/44/56: momentum SGD, lr 0.1, x0.1 at epochs 80 and 120 (He et al.)
    "cifar": dict(dataset="cifar10", model="resnet20", epochs=160, batch_size=128, optimizer="sgd",
                  lr=0.1, momentum=0.9, weight_decay=1e-4, milestones=[80, 120], gamma=0.1,
                  cg=16, lam=1e-4, a=1.0),
    # ImageNet, ResNet-18 / AlexNet: Adam, lr 1e-4, x0.2 at epochs 30, 40, 45; PE group 64x3x3
    "imagenet": dict(dataset="imagenet", model="resnet18", epochs=50, batch_size=256, optimizer="adam",
                     lr=1e-4, momentum=0.9, weight_decay=0.0, milestones=[30, 40, 45], gamma=0.2,
                     cg=64, lam=5e-5, a=1.0, workers=8),
    # Fashion-MNIST on a GPU or a patient CPU: the CIFAR schedule compressed to 60 epochs
    "fmnist": dict(dataset="fashion-mnist", model="resnet20", epochs=60, batch_size=128, optimizer="sgd",
                   lr=0.1, momentum=0.9, weight_decay=1e-4, milestones=[30, 45], gamma=0.1,
                   cg=16, lam=2e-4, a=1.0),
    # The embedded default model (sw/pesto/assets/resnet20_fmnist_wpc.pt): 6 epochs of a
    # 16384-image subset (768 steps), lr 0.1 / 0.01 / 0.001 from epochs 0 / 3 / 5; lambda large
    # enough that PE groups die within the budget (a full run uses the "fmnist" recipe).
    "fmnist-demo": dict(dataset="fashion-mnist", model="resnet20", mode="wpc", epochs=6, batch_size=128,
                        optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, milestones=[3, 5],
                        gamma=0.1, cg=16, lam=5e-3, a=1.0, subset=16384, augment=False),
    # AST-GC (Chapter 3), the embedded dynamic-inference model (sw/pesto/assets/resnet20_fmnist_ast.pt)
    # and the CPU budget B of benchmarks/training/ast.py: K = 3 sub-nets at 30/50/70 % group sparsity,
    # 512 steps of batch 64 on an 8192-image subset (each sub-net active in a third of them), lr 0.1 /
    # 0.01 / 0.001 from epochs 0 / 2 / 3, masks raised every 32 steps over the first 75 % of the run;
    # on a GPU raise epochs and prune_every (and drop the subset), keeping the rest.
    "fmnist-ast": dict(dataset="fashion-mnist", model="resnet20", mode="ast", epochs=4, batch_size=64,
                       optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, milestones=[2, 3], gamma=0.1,
                       cg=16, subset=8192, test_subset=1000, augment=False, subnets=[0.3, 0.5, 0.7], scheme="nd",
                       gc=True, pattern="group", joint=False, sparsity_init=0.0, prune_every=32, prune_start=0.0,
                       prune_end=0.75, regrow=0.5, sparsity_schedule="cosine"),
    # Smoke test / ablation on a CPU budget: a subset and a few epochs
    "fmnist-quick": dict(dataset="fashion-mnist", model="resnet20", epochs=2, batch_size=128,
                         optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, milestones=[],
                         gamma=0.1, cg=16, lam=1e-3, a=1.0, subset=5000, test_subset=2000,
                         augment=False),
}


def recipe(name: str) -> dict:
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; available: {', '.join(RECIPES)}")
    return dict(RECIPES[name])
