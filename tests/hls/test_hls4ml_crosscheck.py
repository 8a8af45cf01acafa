"""Outside cross-check: hls4ml's own conversion of one ternary conv layer (weights alpha * codes),
compiled with g++ by hls4ml and run with predict(), against the float PyTorch forward; and
pesto's integer reference of the same layer against the same float forward."""

from __future__ import annotations

import numpy as np
import pytest

from pesto import numerics
from pesto.ir import TernaryConv
from pesto.reference import run_conv

pytestmark = pytest.mark.xdist_group("hls4ml")

ALPHA = 0.3711   # a layer scale that is no power of two
N, C, H, W = 6, 16, 5, 5


@pytest.fixture(scope="module")
def ternary_layer():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    codes = rng.choice([-1, 0, 1], size=(N, C, 3, 3), p=[0.3, 0.4, 0.3]).astype(np.int8)
    codes[:2] = 0   # two all-zero output channels (a group-sparse layer)
    conv = torch.nn.Conv2d(C, N, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(ALPHA * codes.astype(np.float32)))
    x = (rng.integers(-128, 128, size=(4, C, H, W)) / 64).astype(np.float32)   # exact at 6 frac bits
    with torch.no_grad():
        ref = conv(torch.from_numpy(x)).numpy()
    return torch.nn.Sequential(conv).eval(), codes, x, ref


def test_hls4ml_conversion_matches_float_forward(ternary_layer, tmp_path):
    hls4ml = pytest.importorskip("hls4ml")
    model, _, x, ref = ternary_layer
    config = hls4ml.utils.config_from_pytorch_model(model, (C, H, W), granularity="model",
                                                    default_precision="ap_fixed<28,10>")
    # io_parallel + the Vivado backend: hls4ml builds its C++ with g++ (no Xilinx tool involved).
    hls_model = hls4ml.converters.convert_from_pytorch_model(model, hls_config=config, backend="Vivado",
                                                             io_type="io_parallel", output_dir=str(tmp_path / "h4"))
    hls_model.compile()
    y = np.asarray(hls_model.predict(np.ascontiguousarray(x))).reshape(len(x), H, W, N)   # channels last out
    expected = ref.transpose(0, 2, 3, 1)
    # weights quantized to 18 fractional bits, 144 taps of |x| <= 2: error well below 1e-3
    np.testing.assert_allclose(y, expected, atol=1e-3)
    assert np.abs(expected).max() > 1.0   # a real signal, not all zeros


def test_integer_reference_matches_float_forward(ternary_layer):
    """The same layer through pesto's integer path: ALPHA folded into the output stage."""
    _, codes, x, ref = ternary_layer
    f_in, f_out = 6, 10
    mult, shift, bias = numerics.fold_output_stage(np.full(N, ALPHA), np.zeros(N), f_in, f_out)
    layer = TernaryConv("crosscheck", codes, mult, shift, bias, stride=1, padding=1, cg=16, f_in=f_in, f_out=f_out)
    y = numerics.dequantize(run_conv(numerics.quantize(x, f_in), layer), f_out)
    np.testing.assert_allclose(y, ref, atol=2.0 ** -f_out)
