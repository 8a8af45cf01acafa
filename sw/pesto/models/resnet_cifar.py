"""CIFAR-style ResNet-20/32/44/56 with parameter-free option-A shortcuts (He et al. 2016)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError


class ShortcutA(nn.Module):
    """Option-A shortcut: subsample by ``stride``, zero-pad the channels to ``out_channels``.

    out[:, pad_before : pad_before + in_channels] = x[:, :, ::stride, ::stride], zeros elsewhere
    (the padding is split as in the reference implementation: pad_before = (out - in) // 2).
    No parameters; the exporter reads stride, in_channels, out_channels, pad_before, pad_after.
    """

    def __init__(self, stride: int, in_channels: int, out_channels: int):
        super().__init__()
        if out_channels < in_channels:
            raise ConfigError(f"ShortcutA: out_channels {out_channels} < in_channels {in_channels}")
        self.stride = int(stride)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.pad_before = (self.out_channels - self.in_channels) // 2
        self.pad_after = self.out_channels - self.in_channels - self.pad_before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad_before, self.pad_after))

    def extra_repr(self) -> str:
        return (f"stride={self.stride}, in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"pad=({self.pad_before}, {self.pad_after})")


class BasicBlockA(nn.Module):
    """conv3x3 -> BN -> ReLU -> conv3x3 -> BN, + shortcut, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = ShortcutA(stride, in_channels, out_channels)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """Stem conv3x3(16) -> 3 stages x n blocks (16, 32, 64 channels; strides 1, 2, 2) -> GAP -> fc."""

    def __init__(self, depth: int, in_channels: int = 3, num_classes: int = 10, width: int = 16):
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ConfigError(f"CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56, ...), got {depth}")
        n = (depth - 2) // 6
        self.depth = depth
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        c = width
        stages = []
        for i, (out_c, stride) in enumerate(((width, 1), (2 * width, 2), (4 * width, 2))):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlockA(c, out_c, stride if j == 0 else 1))
                c = out_c
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out" if isinstance(m, nn.Conv2d) else "fan_in",
                                    nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def cifar_resnet(depth: int, in_channels: int = 3, num_classes: int = 10, input_size: int = 32,
                 width: int = 16) -> CifarResNet:
    if input_size < 4:
        raise ConfigError(f"resnet{depth}: input_size {input_size} is too small (needs >= 4: two stride-2 stages)")
    return CifarResNet(depth, in_channels, num_classes, width)
