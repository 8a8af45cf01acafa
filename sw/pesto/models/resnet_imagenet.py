"""ResNet-18 (He et al. 2016) with projection shortcuts: ImageNet stem (7x7/2 conv + 3x3/2 max pool)
or, for small images, the CIFAR stem of the continual-learning literature (3x3/1 conv, no pool)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from .resnet_cifar import _init_weights


class BasicBlock(nn.Module):
    """conv3x3 -> BN -> ReLU -> conv3x3 -> BN, + (identity | conv1x1 -> BN), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_channels))
        else:
            self.downsample = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.downsample(x))


class ResNet18(nn.Module):
    """stem -> 4 stages x 2 BasicBlocks (width x 1, 2, 4, 8 channels; strides 1, 2, 2, 2) -> GAP -> fc.

    stem "imagenet": conv7x7/2 + BN + ReLU + maxpool3x3/2; stem "cifar": conv3x3/1 + BN + ReLU
    (``maxpool`` is an Identity), the ResNet-18 that LUMP and CaSSLe train on 32x32 images."""

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, stem: str = "imagenet", width: int = 64):
        super().__init__()
        if stem not in ("imagenet", "cifar"):
            raise ConfigError(f"ResNet18: unknown stem {stem!r}; use 'imagenet' or 'cifar'")
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(width)
        c = width
        stages = []
        for out_c, stride in ((width, 1), (2 * width, 2), (4 * width, 2), (8 * width, 2)):
            stages.append(nn.Sequential(BasicBlock(c, out_c, stride), BasicBlock(out_c, out_c, 1)))
            c = out_c
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet18(in_channels: int = 3, num_classes: int = 1000, input_size: int = 224) -> ResNet18:
    if input_size < 32:
        raise ConfigError(f"resnet18: input_size {input_size} is too small (needs >= 32: five stride-2 steps)")
    return ResNet18(in_channels, num_classes)


def resnet18_cifar(in_channels: int = 3, num_classes: int = 10, input_size: int = 32, width: int = 64) -> ResNet18:
    if input_size < 8:
        raise ConfigError(f"resnet18-cifar: input_size {input_size} is too small (needs >= 8: three stride-2 steps)")
    return ResNet18(in_channels, num_classes, stem="cifar", width=width)
