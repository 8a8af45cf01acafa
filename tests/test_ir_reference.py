"""The integer layer and its reference: validation, and the conv checked against a direct loop."""

import numpy as np
import pytest

from pesto import numerics
from pesto.errors import ConfigError
from pesto.ir import TernaryConv
from pesto.reference import conv_accumulate, run_conv


def make(codes, **kw):
    n = codes.shape[0]
    return TernaryConv("t", codes, mult=np.ones(n), shift=np.zeros(n), bias=np.zeros(n), **kw)


def direct_conv(x, codes, stride, pad):
    b, c, h, w = x.shape
    n, _, kh, kw = codes.shape
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    out = np.zeros((b, n, ho, wo), dtype=np.int64)
    for oy in range(ho):
        for ox in range(wo):
            win = xp[:, :, oy * stride:oy * stride + kh, ox * stride:ox * stride + kw]
            out[:, :, oy, ox] = np.einsum("bckl,nckl->bn", win, codes.astype(np.int64))
    return out


@pytest.mark.parametrize("k,stride,pad", [(3, 1, 1), (3, 2, 1), (1, 1, 0), (1, 2, 0), (3, 1, 0)])
def test_accumulate_matches_direct_loop(k, stride, pad):
    rng = np.random.default_rng(k * 10 + stride)
    codes = rng.integers(-1, 2, (5, 7, k, k)).astype(np.int8)
    x = rng.integers(-32768, 32768, (2, 7, 9, 6)).astype(np.int16)
    lay = make(codes, stride=stride, padding=pad, cg=4)
    assert (conv_accumulate(x, lay) == direct_conv(x, codes, stride, pad)).all()


def test_accumulator_is_exact_at_the_fan_in_bound():
    c = numerics.MAX_FAN_IN // 9
    codes = np.ones((1, c, 3, 3), dtype=np.int8)
    x = np.full((1, c, 3, 3), -32768, dtype=np.int16)
    acc = conv_accumulate(x, make(codes, padding=0))
    assert acc.item() == -32768 * c * 9


def test_run_conv_applies_output_stage():
    codes = np.ones((1, 1, 1, 1), dtype=np.int8)
    lay = TernaryConv("t", codes, mult=[3], shift=[1], bias=[-1], relu=True, cg=1)
    x = np.array([[[[5, -5, 0]]]], dtype=np.int16)
    # (15-1+1)>>1 = 7 ; (-15-1+1)>>1 = -8 -> relu 0 ; (0-1+1)>>1 = 0
    assert run_conv(x, lay).reshape(-1).tolist() == [7, 0, 0]


@pytest.mark.parametrize("bad", [
    dict(codes=np.full((1, 1, 3, 3), 2)), dict(codes=np.zeros((1, 1, 5, 5))), dict(stride=3),
    dict(padding=2), dict(cg=0), dict(codes=np.zeros((1, 8000, 3, 3))),
])
def test_invalid_layers_are_refused(bad):
    args = dict(codes=np.zeros((1, 1, 3, 3)), stride=1, padding=1, cg=1)
    args.update(bad)
    with pytest.raises(ConfigError):
        make(args.pop("codes"), **args)


def test_wrong_input_is_refused():
    lay = make(np.zeros((1, 2, 1, 1)), cg=2)
    with pytest.raises(ConfigError, match="int16"):
        run_conv(np.zeros((1, 2, 3, 3), dtype=np.float32), lay)
    with pytest.raises(ConfigError, match="batch"):
        run_conv(np.zeros((1, 3, 3, 3), dtype=np.int16), lay)
