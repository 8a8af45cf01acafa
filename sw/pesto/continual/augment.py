"""Self-supervised views of small grey (or colour) images, on tensors, a whole batch at a time.

The SimSiam / LUMP recipe for 32x32 images, without the colour terms a grey image has no use for:

    random resized crop (scale 0.2-1, aspect 3/4-4/3) + horizontal flip   one affine grid_sample
    brightness and contrast jitter of +-0.4, applied with probability 0.8
    (LUMP, like SimSiam on CIFAR, uses no Gaussian blur at this size; saturation, hue and
    random greyscale are no-ops on one channel, and on three they are left out too)

Every draw comes from the ``torch.Generator`` passed in, so a view depends on (images, generator
state) only: the same seed gives the same views on every machine and after a resume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data import normalize


@dataclass(frozen=True)
class ViewAugment:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5
    jitter: float = 0.4          # brightness and contrast factors drawn from [1 - j, 1 + j]
    jitter_p: float = 0.8

    def __call__(self, images: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """One random view of each image of a uint8 (N, C, H, W) batch, normalised like pesto.data."""
        x = images.float().div_(255.0)
        n, dev = x.shape[0], x.device
        u = torch.rand(n, 6, generator=g).to(dev)   # the draws come from a CPU generator wherever x is
        area = self.scale[0] + (self.scale[1] - self.scale[0]) * u[:, 0]
        log_r = math.log(self.ratio[0]) + (math.log(self.ratio[1]) - math.log(self.ratio[0])) * u[:, 1]
        w = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)      # crop size as a fraction of the side
        h = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
        cx = (1 - w) * (2 * u[:, 2] - 1)                            # crop centre in [-1, 1] grid units
        cy = (1 - h) * (2 * u[:, 3] - 1)
        sx = torch.where(u[:, 4] < self.flip, -w, w)               # a negative x scale mirrors the crop
        theta = torch.zeros(n, 2, 3, device=dev)
        theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, cx, h, cy
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        on = (u[:, 5] < self.jitter_p).view(-1, 1, 1, 1)
        b, c = (1 + self.jitter * (2 * torch.rand(2, n, generator=g).to(dev) - 1)).view(2, n, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        jittered = ((x * b - mean * b) * c + mean * b).clamp_(0, 1)  # brightness, then contrast about the mean
        x = torch.where(on, jittered, x)
        return normalize(x, self.mean, self.std)

    def plain(self, images: torch.Tensor) -> torch.Tensor:
        """The evaluation view: no augmentation, the same normalisation."""
        return normalize(images.float().div_(255.0), self.mean, self.std)
