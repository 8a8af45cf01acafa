"""Model zoo: shapes, parameter counts, option-A shortcut, fx-traceability, bad names."""

import pytest
import torch
import torch.fx

from pesto.errors import ConfigError
from pesto.models import ShortcutA, available_models, build_model
from pesto.quant import ternarize_model, ternary_layers


@pytest.mark.parametrize("depth,params", [(20, 0.27e6), (32, 0.46e6), (44, 0.66e6), (56, 0.85e6)])
def test_cifar_resnet_sizes_match_he_et_al(depth, params):
    m = build_model(f"resnet{depth}")
    n = sum(p.numel() for p in m.parameters())
    assert abs(n - params) / params < 0.03  # He et al. 2016 table 6
    convs = [x for x in m.modules() if isinstance(x, torch.nn.Conv2d)]
    assert len(convs) == depth - 1  # + the final fc = depth weight layers


def test_fashion_mnist_geometry_and_trace():
    m = build_model("resnet20", in_channels=1, num_classes=10, input_size=28).eval()
    x = torch.randn(3, 1, 28, 28)
    y = m(x)
    assert y.shape == (3, 10)
    assert torch.allclose(torch.fx.symbolic_trace(m)(x), y)
    ternarize_model(m, cg=16)
    assert len(ternary_layers(m)) == 18  # first conv and fc stay float
    torch.fx.symbolic_trace(m)


def test_shortcut_a_subsamples_and_zero_pads():
    s = ShortcutA(2, 16, 32)
    x = torch.arange(2 * 16 * 5 * 5, dtype=torch.float32).reshape(2, 16, 5, 5)
    y = s(x)
    assert y.shape == (2, 32, 3, 3)
    assert (s.pad_before, s.pad_after) == (8, 8)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert y[:, :8].abs().sum() == 0 and y[:, 24:].abs().sum() == 0
    assert not list(s.parameters())


@pytest.mark.parametrize("name,size", [("resnet18", 32), ("resnet18-cifar", 28), ("alexnet", 64)])
def test_imagenet_style_models_run(name, size):
    m = build_model(name, in_channels=3, num_classes=7, input_size=size).eval()
    x = torch.randn(1, 3, size, size)
    assert m(x).shape == (1, 7)
    assert torch.allclose(torch.fx.symbolic_trace(m)(x), m(x))


def test_resnet18_cifar_is_resnet18_with_a_small_image_stem():
    m, ref = build_model("resnet18-cifar", in_channels=1, input_size=28), build_model("resnet18", in_channels=1)
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1) and isinstance(m.maxpool, torch.nn.Identity)
    n, n_ref = (sum(p.numel() for p in x.parameters()) for x in (m, ref))
    assert n == n_ref - 64 * 1 * (49 - 9)                           # only the stem kernel differs: 11.17 M
    with pytest.raises(ConfigError, match="too small"):
        build_model("resnet18-cifar", input_size=6)


def test_bad_model_requests():
    with pytest.raises(ConfigError, match="unknown model 'vgg'.*resnet20"):
        build_model("vgg")
    with pytest.raises(ConfigError, match="too small"):
        build_model("alexnet", input_size=32)
    with pytest.raises(ConfigError, match="positive integer"):
        build_model("resnet20", in_channels=0)
    assert set(available_models()) == {"resnet20", "resnet32", "resnet44", "resnet56", "resnet18", "resnet18-cifar",
                                       "alexnet"}
