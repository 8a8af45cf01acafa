"""ImageNet-style AlexNet (the torchvision/"one weird trick" variant with batch norm-free convs)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from .resnet_cifar import _init_weights

MIN_INPUT = 63  # 11x11/4 stem and three 3x3/2 max pools need at least this


class AlexNet(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 11, 4, 2)
        self.conv2 = nn.Conv2d(64, 192, 5, 1, 2)
        self.conv3 = nn.Conv2d(192, 384, 3, 1, 1)
        self.conv4 = nn.Conv2d(384, 256, 3, 1, 1)
        self.conv5 = nn.Conv2d(256, 256, 3, 1, 1)
        self.pool = nn.MaxPool2d(3, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.drop = nn.Dropout(dropout)
        self.fc1 = nn.Linear(256 * 6 * 6, 4096)
        self.fc2 = nn.Linear(4096, 4096)
        self.fc = nn.Linear(4096, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = F.relu(self.conv3(x))
        x = F.relu(self.conv4(x))
        x = self.pool(F.relu(self.conv5(x)))
        x = torch.flatten(self.avgpool(x), 1)
        x = F.relu(self.fc1(self.drop(x)))
        x = F.relu(self.fc2(self.drop(x)))
        return self.fc(x)


def alexnet(in_channels: int = 3, num_classes: int = 1000, input_size: int = 224, dropout: float = 0.5) -> AlexNet:
    if input_size < MIN_INPUT:
        raise ConfigError(f"alexnet: input_size {input_size} is too small (needs >= {MIN_INPUT}); "
                          f"use a CIFAR-style resnet for small images")
    return AlexNet(in_channels, num_classes, dropout)
