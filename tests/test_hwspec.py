"""The register map and stream layouts: one definition, packed exactly as documented."""

from pathlib import Path

import numpy as np
import pytest

from pesto.errors import ConfigError
from pesto.hwspec import (REGMAP, HwConfig, activation_words, hw_codes, input_stream, layer_registers,
                          pack_activations, pack_outputs, pack_weights, render_verilog_header, unpack_outputs,
                          weight_words)
from pesto.ir import TernaryConv

ROOT = Path(__file__).resolve().parents[1]


def layer(codes, cg=16, **kw):
    n = codes.shape[0]
    kw.setdefault("padding", 1 if codes.shape[2] == 3 else 0)
    return TernaryConv("t", codes, mult=np.arange(n) - 1, shift=np.full(n, 3), bias=-np.arange(n) * 1000,
                       cg=cg, **kw)


def test_verilog_header_is_generated_from_regmap():
    committed = (ROOT / "hw" / "rtl" / "pesto_regmap.vh").read_text()
    assert committed == render_verilog_header(), "run `pesto hwspec` to regenerate hw/rtl/pesto_regmap.vh"


def test_regmap_is_consistent():
    offsets = [r.offset for r in REGMAP.registers.values()]
    assert len(set(offsets)) == len(offsets)
    assert all(o % 4 == 0 and o < 2 ** REGMAP.spec["axil_addr_width"] for o in offsets)
    assert REGMAP.offset("CTRL") == 0 and REGMAP.offset("ISR") == 0x0C  # ap_ctrl_hs layout
    assert REGMAP.id == int.from_bytes(b"PEST", "big")
    with pytest.raises(ValueError):
        REGMAP["KERNEL"].encode(KH=16)


def test_hwcfg_round_trip():
    hw = HwConfig(lanes=16, num_pe=8, max_k=3, log2_act_depth=11, log2_wgt_depth=10, log2_max_n=9,
                  log2_max_pix=10)
    r0 = REGMAP["HWCFG0"].encode(LANES=16, NUM_PE=8, MAX_K=3)
    r1 = REGMAP["HWCFG1"].encode(LOG2_ACT_DEPTH=11, LOG2_WGT_DEPTH=10, LOG2_MAX_N=9, LOG2_MAX_PIX=10)
    assert HwConfig.from_registers(r0, r1) == hw


def test_weight_packet_by_hand():
    codes = np.zeros((2, 4, 1, 1), dtype=np.int8)
    codes[1, :, 0, 0] = [1, -1, 0, 1]
    words = pack_weights(layer(codes, cg=4), lanes=4)
    # params: bias, (mult | shift << 16) per channel
    assert words[0] == 0 and words[1] == (0xFFFF | 3 << 16)  # mult -1 as int16
    assert words[2] == np.uint64(-1000 & (2**64 - 1)) and words[3] == (0 | 3 << 16)
    assert words[4] == 0b10          # indexer: only (n=1, g=0)
    assert words[5] == 0b01_00_11_01  # lanes 0..3: +1 (01), -1 (11), 0 (00), +1 (01)
    assert len(words) == 6 == weight_words(layer(codes, cg=4), 4)


def test_activation_packet_order_and_lane_padding():
    x = np.arange(1, 3 * 2 * 2 + 1, dtype=np.int16).reshape(3, 2, 2)
    codes = np.ones((1, 3, 1, 1), dtype=np.int8)
    words = pack_activations(x, layer(codes, cg=2), lanes=4)  # cpg=2: groups {0,1}, {2}
    vals = np.array([(int(w) >> (16 * k)) & 0xFFFF for w in words for k in range(4)])
    # group 0, pixel (0,0): ch0, ch1, 0, 0 ; group 1, pixel (0,0): ch2, 0, 0, 0
    assert vals[:4].tolist() == [x[0, 0, 0], x[1, 0, 0], 0, 0]
    assert vals[16:20].tolist() == [x[2, 0, 0], 0, 0, 0]
    assert len(words) == activation_words(layer(codes, cg=2), 2, 2, 4) == 8


def test_cg_larger_than_lanes_splits_groups_and_skips_per_hw_group():
    codes = np.zeros((1, 32, 3, 3), dtype=np.int8)
    codes[0, 20, 1, 1] = -1       # only the second 16-channel half is non-zero
    hw = hw_codes(layer(codes, cg=32), 16)
    assert hw.shape == (1, 2, 3, 3, 16)
    assert not hw[0, 0].any() and hw[0, 1, 1, 1, 4] == -1
    regs = layer_registers(layer(codes, cg=32), 8, 8, 16)
    assert regs["G"] == 2 and regs["NNZ"] == 1
    with pytest.raises(ConfigError, match="multiple"):
        hw_codes(layer(np.zeros((1, 24, 1, 1), np.int8), cg=24), 16)


def test_output_round_trip_and_length_check():
    y = np.random.default_rng(1).integers(-32768, 32767, (3, 3, 3)).astype(np.int16)
    words = pack_outputs(y)
    assert (unpack_outputs(words, 3, 3, 3) == y).all()
    from pesto.errors import HardwareError
    with pytest.raises(HardwareError):
        unpack_outputs(words[:-1], 3, 3, 3)


def test_input_stream_without_weights():
    codes = np.ones((2, 16, 3, 3), dtype=np.int8)
    x = np.ones((16, 4, 4), dtype=np.int16)
    lay = layer(codes)
    assert len(input_stream(lay, x, 16, load_weights=False)) == activation_words(lay, 4, 4, 16)
    assert len(input_stream(lay, x, 16)) == weight_words(lay, 16) + activation_words(lay, 4, 4, 16)
