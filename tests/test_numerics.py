"""The fixed-point contract at its edges (docs/numerics.md)."""

import numpy as np
import pytest

from pesto import numerics as nx
from pesto.errors import ConfigError


def test_round_shift_is_round_half_up():
    v = np.array([5, 6, 7, -5, -6, -7, 4, -4, 2, -2])
    # divide by 4: 1.25->1, 1.5->2, 1.75->2, -1.25->-1, -1.5->-1 (half up), -1.75->-2, 1, -1, 0.5->1, -0.5->0
    assert nx.round_shift(v, 2).tolist() == [1, 2, 2, -1, -1, -2, 1, -1, 1, 0]
    assert nx.round_shift(v, 0).tolist() == v.tolist()


def test_round_shift_per_element_shift():
    assert nx.round_shift([3, 3, 3], [0, 1, 2]).tolist() == [3, 2, 1]


def test_saturate_edges():
    v = np.array([-40000, -32769, -32768, 0, 32767, 32768, 10**12])
    assert nx.saturate(v).tolist() == [-32768, -32768, -32768, 0, 32767, 32767, 32767]
    assert nx.saturate(v).dtype == np.int16


def test_output_stage_hand_computed():
    acc = np.array([[[10]], [[-10]], [[3]]])  # (N=3, 1, 1)
    mult = np.array([3, 3, -1])
    shift = np.array([2, 2, 0])
    bias = np.array([1, 1, 100])
    # ch0: (30+1+2)>>2 = 8; ch1: (-30+1+2)>>2 = floor(-27/4) = -7; ch2: -3+100 = 97
    assert nx.output_stage(acc, mult, shift, bias, relu=False).reshape(-1).tolist() == [8, -7, 97]
    assert nx.output_stage(acc, mult, shift, bias, relu=True).reshape(-1).tolist() == [8, 0, 97]


def test_output_stage_saturates_at_extremes():
    acc = np.array([[[2**31 - 1]], [[-2**31]]])
    out = nx.output_stage(acc, [nx.MULT_MAX, nx.MULT_MAX], [0, 0], [nx.BIAS_MAX, nx.BIAS_MIN], relu=False)
    assert out.reshape(-1).tolist() == [32767, -32768]


def test_quantize_rounds_half_up_and_saturates():
    assert nx.quantize([0.5, -0.5, 1.49, 1e9, -1e9], 0).tolist() == [1, 0, 1, 32767, -32768]
    assert nx.quantize([0.25], 2).tolist() == [1]


def test_rescale_and_add():
    assert nx.rescale([3, -3], 1, 3).tolist() == [12, -12]
    assert nx.rescale([6, -6, 5], 3, 1).tolist() == [2, -1, 1]  # 1.5->2, -1.5->-1, 1.25->1
    out = nx.add(np.array([100, -32000]), 4, np.array([8, -32000]), 3, 4, relu=False)
    assert out.tolist() == [116, -32768]
    assert nx.add(np.array([-5]), 0, np.array([2]), 0, 0, relu=True).tolist() == [0]


def test_choose_frac_bits():
    assert nx.choose_frac_bits(1.0) == 14        # 1.0 * 2**14 = 16384 <= 32767 < 2**15
    assert nx.choose_frac_bits(0.9999) == 15
    assert nx.choose_frac_bits(32767.0) == 0
    assert nx.choose_frac_bits(0.0) == nx.FRAC_MAX
    with pytest.raises(ConfigError):
        nx.choose_frac_bits(float("nan"))


def test_fan_in_bound():
    nx.check_fan_in(7281, 3, 3)  # 65529 <= 65535
    with pytest.raises(ConfigError, match="overflow"):
        nx.check_fan_in(7282, 3, 3)
    # the bound really holds: worst case of the largest allowed fan-in fits int32
    assert nx.MAX_FAN_IN * 32768 < 2**31


@pytest.mark.parametrize("scale", [1e-6, 3.7e-3, 0.5, 0.99, 1.0, 123.4, -0.02])
def test_fold_output_stage_matches_real_affine(scale):
    rng = np.random.default_rng(0)
    acc = rng.integers(-100000, 100000, size=1000)
    f_in, f_out = 10, 8
    bias_real = -0.3
    mult, shift, bias = nx.fold_output_stage([scale], [bias_real], f_in, f_out)
    assert abs(mult[0]) >= 2**14 or shift[0] == nx.SHIFT_MAX
    got = nx.round_shift(acc * mult[0] + bias[0], shift[0])
    want = (scale * acc * 2.0**-f_in + bias_real) * 2.0**f_out
    # 15 significant bits of the gain: relative error ~ 2**-15, plus half an LSB of rounding
    assert np.all(np.abs(got - want) <= 1.0 + np.abs(want) * 2**-14)


def test_fold_output_stage_zero_and_bad_values():
    mult, shift, bias = nx.fold_output_stage([0.0], [1.0], 8, 8)
    assert mult[0] == 0 and shift[0] == 0 and bias[0] == 256
    with pytest.raises(ConfigError, match="NaN"):
        nx.fold_output_stage([np.nan], [0.0], 8, 8)
    with pytest.raises(ConfigError, match="too large"):
        nx.fold_output_stage([2.0**20], [0.0], 0, 0)
