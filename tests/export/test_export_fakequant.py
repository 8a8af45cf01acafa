"""The PyTorch integer forward agrees with the numpy reference bit for bit, layer by layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pesto import numerics
from pesto.export import fakequant
from pesto.ir import TernaryConv
from pesto.reference.layer import run_conv
from pesto.reference.network import run


def torch_layer(x: np.ndarray, layer: TernaryConv) -> np.ndarray:
    with torch.no_grad():
        return fakequant.TorchTernaryConv(layer)(torch.from_numpy(x)).numpy()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), c=st.integers(1, 24), k=st.sampled_from([1, 3]), stride=st.sampled_from([1, 2]),
       hw=st.integers(1, 9), relu=st.booleans(), seed=st.integers(0, 2**31))
def test_random_layers_and_inputs(n, c, k, stride, hw, relu, seed):
    rng = np.random.default_rng(seed)
    pad = int(rng.integers(0, k // 2 + 1))
    if hw + 2 * pad < k:
        hw = k
    codes = rng.integers(-1, 2, size=(n, c, k, k)).astype(np.int8)
    mult = rng.integers(numerics.MULT_MIN, numerics.MULT_MAX + 1, size=n)
    shift = rng.integers(0, numerics.SHIFT_MAX + 1, size=n)
    bias = rng.integers(-(1 << 40), 1 << 40, size=n)
    layer = TernaryConv("rand", codes, mult, shift, bias, stride=stride, padding=pad, cg=4, relu=relu)
    # full int16 range, with the extremes over-represented (saturation and rounding edges)
    x = rng.integers(numerics.ACT_MIN, numerics.ACT_MAX + 1, size=(2, c, hw, hw)).astype(np.int16)
    x[rng.random(x.shape) < 0.2] = numerics.ACT_MIN
    x[rng.random(x.shape) < 0.2] = numerics.ACT_MAX
    assert np.array_equal(torch_layer(x, layer), run_conv(x, layer))


def test_output_stage_edges():
    """Round half up on negative ties, shift 0, saturation both ways, ReLU."""
    codes = np.ones((6, 1, 1, 1), dtype=np.int8)
    layer = TernaryConv("edge", codes, mult=[1, 1, 1, 3, 32767, -32768], shift=[1, 1, 0, 2, 0, 0],
                        bias=[0] * 6, cg=1)
    x = np.array([-3, -1, 1, 5, 7, -2, 2, 32767, -32768], dtype=np.int16).reshape(1, 1, 1, 9)
    want = run_conv(x, layer)
    assert np.array_equal(torch_layer(x, layer), want)
    assert want[0, 0, 0, :2].tolist() == [-1, 0]          # -1.5 -> -1, -0.5 -> 0 (half up)
    assert want[0, 4].max() == 32767 and want[0, 5].min() == -32768


def test_every_exported_layer_on_real_activations(resnet20_artifact, fmnist):
    """Real Fashion-MNIST images through the reference; each layer's real input into both sides."""
    _, trace = run(resnet20_artifact, fmnist[1][:16], trace=True)
    for node in resnet20_artifact.nodes:
        if node.op != "tconv":
            continue
        x = trace[node.inputs[0]]
        assert x.dtype == np.int16
        got = torch_layer(x, node.layer)
        assert np.array_equal(got, trace[node.name]), node.name
        assert got.any(), f"{node.name}: all-zero output, the test would prove nothing"


def test_every_exported_layer_on_random_inputs(resnet20_artifact):
    rng = np.random.default_rng(0)
    for layer in resnet20_artifact.layers:
        x = rng.integers(-4096, 4096, size=(2, layer.in_channels, 9, 9)).astype(np.int16)
        assert np.array_equal(torch_layer(x, layer), run_conv(x, layer)), layer.name


def test_whole_network_with_torch_layers(resnet20_artifact, fmnist):
    x = fmnist[1][16:24]
    assert np.array_equal(run(resnet20_artifact, x, conv=fakequant.conv), run(resnet20_artifact, x))


@settings(max_examples=60, deadline=None)
@given(f=st.integers(-4, 20), fa=st.integers(0, 16), fb=st.integers(0, 16), fo=st.integers(0, 16),
       relu=st.booleans(), seed=st.integers(0, 2**31))
def test_glue_quantize_and_add(f, fa, fb, fo, relu, seed):
    rng = np.random.default_rng(seed)
    xf = rng.normal(0, 2.0 ** (14 - f), size=64)
    xf[:3] = [0.5 * 2.0 ** -f, -0.5 * 2.0 ** -f, 1e9]   # ties and saturation
    assert np.array_equal(fakequant.quantize(torch.from_numpy(xf), f).numpy(), numerics.quantize(xf, f))
    a = rng.integers(numerics.ACT_MIN, numerics.ACT_MAX + 1, size=64).astype(np.int16)
    b = rng.integers(numerics.ACT_MIN, numerics.ACT_MAX + 1, size=64).astype(np.int16)
    got = fakequant.add(torch.from_numpy(a), fa, torch.from_numpy(b), fb, fo, relu).numpy()
    assert np.array_equal(got, numerics.add(a, fa, b, fb, fo, relu))


def test_fakequant_does_not_use_the_numpy_numerics():
    """Independence: the torch side may share numerics' constants, never its functions."""
    borrowed = [k for k, v in vars(fakequant).items()
                if getattr(v, "__module__", None) == "pesto.numerics" or getattr(v, "__name__", None) == "pesto.numerics"]
    assert borrowed == []
    assert isinstance(fakequant.ACT_MAX, int)


def test_rejects_non_int16(resnet20_artifact):
    layer = resnet20_artifact.layers[0]
    with pytest.raises(TypeError, match="int16"):
        fakequant.TorchTernaryConv(layer)(torch.zeros(1, layer.in_channels, 4, 4))
