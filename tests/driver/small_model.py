"""A small ResNet-20 for the tests that run whole networks through the RTL simulation.

The RTL simulation runs about 10k cycles per wall second, so those tests use a ResNet-20 on
12x12 centre crops of Fashion-MNIST (every layer kind of the real one, a fifth of the pixels),
ternarized with half of its PE groups zeroed so skipping has work to skip.
"""

from __future__ import annotations

import numpy as np

SIZE = 12


def crop(images: np.ndarray, size: int = SIZE) -> np.ndarray:
    c = (images.shape[-1] - size) // 2
    return np.ascontiguousarray(images[..., c:c + size, c:c + size])


def small_resnet20(seed: int = 0, group_sparsity: float = 0.5):
    """ResNet-20 for 1x12x12 inputs, ternarized (Cg=16), with ``group_sparsity`` of every
    ternary layer's PE groups set to zero."""
    import torch
    from pesto.geometry import num_groups
    from pesto.models import build_model
    from pesto.quant import latent_weight, ternarize_model, ternary_layers
    torch.manual_seed(seed)
    model = ternarize_model(build_model("resnet20", in_channels=1, num_classes=10, input_size=SIZE), cg=16)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, module, cg in ternary_layers(model):
            w = latent_weight(module)
            n, c = w.shape[:2]
            g = num_groups(c, cg)
            dead = torch.rand(n, g, generator=gen) < group_sparsity
            for ni, gi in dead.nonzero().tolist():
                w[ni, gi * cg:(gi + 1) * cg] = 0
    return model.eval()


def save_small_checkpoint(path, seed: int = 0):
    """small_resnet20 as a `pesto train` checkpoint (for the float-model comparison)."""
    from pesto.train.checkpoint import save_checkpoint
    cfg = dict(name="resnet20", in_channels=1, num_classes=10, input_size=SIZE)
    quant = dict(mode="wpc", cg=16, keep_first_last=True, cg_overrides={})
    save_checkpoint(path, small_resnet20(seed), model_cfg=cfg, quant=quant,
                    data=dict(dataset="fashion-mnist", mean=[0.2860], std=[0.3530]))
    return path
