"""Train your own architecture with pesto's ternary training and group-sparse regularizers.

    import torch.nn as nn
    from pesto.train import fit

    class Net(nn.Module):                       # any nn.Module torch.fx can trace
        def __init__(self, in_channels=1, num_classes=10):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                                      nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes))
        def forward(self, x):
            return self.body(x)

    model = fit(Net(), "fashion-mnist", mode="wpc", epochs=2, subset=5000, out="runs/net.pt")
    artifact = pesto.export(model, calib_images, "net.pesto")

The same from the command line: ``pesto train --model mypackage.nets:Net`` (a function or a
class returning the nn.Module, called with in_channels / num_classes / input_size where it takes
them). The model is ternarized in place as ``mode`` says (its first and last conv/linear stay in
float unless keep_first_last=False) and trained by the same loop as the zoo models
(``pesto.train.loop.train``); every other TrainConfig field is an option here.
"""

from __future__ import annotations

import torch.nn as nn

from ..errors import ConfigError


def fit(model: nn.Module | str, dataset: str = "fashion-mnist", *, mode: str = "wpc", epochs: int = 2,
        out: str | None = None, progress: bool = True, **options) -> nn.Module:
    """Train ``model`` on ``dataset``; returns the trained model in eval mode (on the CPU).

    model: an nn.Module, or a factory name ``package.module:function`` / a zoo name ("resnet20").
    out: checkpoint written after every epoch (None: kept in memory only). options: any field of
    pesto.train.loop.TrainConfig (lr, lam, cg, subset, batch_size, steps_per_epoch, ...).
    """
    from .loop import TrainConfig, train
    if isinstance(model, str):
        cfg = TrainConfig.from_dict({"model": model, "dataset": dataset, "mode": mode, "epochs": epochs, "out": out,
                                     "progress": progress, **options})
        ckpt = train(cfg)
        from .checkpoint import model_from_checkpoint
        return model_from_checkpoint(ckpt)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"fit: model must be an nn.Module or a factory name, got {type(model).__name__}")
    name = f"{type(model).__module__}:{type(model).__qualname__}"   # how a checkpoint rebuilds it
    cfg = TrainConfig.from_dict({"model": name, "dataset": dataset, "mode": mode, "epochs": epochs, "out": out,
                                 "progress": progress, **options})
    train(cfg, model)
    return model.cpu().eval()
