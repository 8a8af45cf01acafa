"""Model zoo: the architectures of Chapter 2, built by name.

    build_model("resnet20", in_channels=1, num_classes=10, input_size=28)

CIFAR style (He et al. 2016, section 4.2): resnet20/32/44/56, 3x3 stem, three stages of
16/32/64 channels, parameter-free option-A shortcuts (``ShortcutA``). ImageNet style:
resnet18 (7x7 stem, max pool, 1x1 projection shortcuts) and alexnet. Small images: resnet18-cifar
(the same ResNet-18 with a 3x3 stride-1 stem and no max pool, as continual-learning papers use). Every forward() is a
plain chain of modules and functional ops so torch.fx can trace it (the exporter does).
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from ..errors import ConfigError
from .resnet_cifar import BasicBlockA, CifarResNet, ShortcutA, cifar_resnet
from .resnet_imagenet import BasicBlock, ResNet18, resnet18, resnet18_cifar
from .alexnet import AlexNet, alexnet

# name -> (factory(in_channels, num_classes, input_size, **kw), one-line description)
MODELS: dict[str, tuple[Callable[..., nn.Module], str]] = {
    "resnet20": (lambda **kw: cifar_resnet(20, **kw), "CIFAR-style ResNet-20 (3x3 blocks, option-A shortcuts)"),
    "resnet32": (lambda **kw: cifar_resnet(32, **kw), "CIFAR-style ResNet-32"),
    "resnet44": (lambda **kw: cifar_resnet(44, **kw), "CIFAR-style ResNet-44"),
    "resnet56": (lambda **kw: cifar_resnet(56, **kw), "CIFAR-style ResNet-56"),
    "resnet18": (resnet18, "ImageNet-style ResNet-18 (7x7 stem, projection shortcuts)"),
    "resnet18-cifar": (resnet18_cifar, "ResNet-18 for small images (3x3 stride-1 stem, no max pool)"),
    "alexnet": (alexnet, "ImageNet-style AlexNet (input_size >= 63)"),
}


def available_models() -> list[str]:
    return list(MODELS)


def import_factory(spec: str) -> Callable[..., nn.Module]:
    """A user's model factory named ``package.module:function`` (importable from sys.path or the
    current folder)."""
    import importlib
    import sys
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"model {spec!r}: write a zoo name ({', '.join(MODELS)}) or package.module:factory")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")              # the current folder, as `python -m` has it
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"model {spec!r}: cannot import {attr} from {module_name} ({e}); give "
                          f"package.module:factory of a function that returns an nn.Module") from e
    if not callable(factory):
        raise ConfigError(f"model {spec!r}: {attr} is not callable")
    return factory


def _call_factory(spec: str, **geometry) -> nn.Module:
    """factory(in_channels=, num_classes=, input_size=) where it takes them, else factory()."""
    import inspect
    factory = import_factory(spec)
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    takes_all = any(p.kind == p.VAR_KEYWORD for p in params.values())
    model = factory(**{k: v for k, v in geometry.items() if takes_all or k in params})
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model {spec!r} returned {type(model).__name__}, not an nn.Module")
    return model


def build_model(name: str, in_channels: int = 3, num_classes: int = 10, input_size: int = 32,
                **kw) -> nn.Module:
    """A freshly initialised model of architecture ``name`` (see ``available_models()``), or of
    a user's factory ``package.module:function`` (called with in_channels, num_classes,
    input_size where it takes them)."""
    if ":" in name:
        return _call_factory(name, in_channels=in_channels, num_classes=num_classes, input_size=input_size)
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(MODELS)}, or package.module:factory")
    for what, v in (("in_channels", in_channels), ("num_classes", num_classes), ("input_size", input_size)):
        if not isinstance(v, int) or v < 1:
            raise ConfigError(f"build_model({name!r}): {what} must be a positive integer, got {v!r}")
    return MODELS[name][0](in_channels=in_channels, num_classes=num_classes, input_size=input_size, **kw)


__all__ = ["MODELS", "available_models", "build_model", "import_factory", "ShortcutA", "BasicBlockA", "CifarResNet",
           "BasicBlock", "ResNet18", "AlexNet", "cifar_resnet", "resnet18", "resnet18_cifar", "alexnet"]
