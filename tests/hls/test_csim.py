"""The HLS engine in C simulation (g++ + hls4ml's ap_types), bit-exact against pesto.reference."""

from __future__ import annotations

import numpy as np
import pytest

from pesto.hls import error_cases, layer_case
from pesto.hls.render import layer_needs
from pesto.hwspec import REGMAP, HwConfig
from pesto.ir import TernaryConv
from pesto.sim.measure import TABLE7, make_layer, random_input, table7_case

pytestmark = pytest.mark.xdist_group("hls")

# (N, C, kernel, stride, padding, cg, H, W, group sparsity): odd sizes, P not a multiple of
# NUM_PE, N*P not a multiple of 4, Cg below / at / above the 16 lanes, C not a multiple of Cg,
# 1x1 shortcut convolutions, stride 2, no padding, fully dense and all-zero layers.
SWEEP = [
    (16, 16, 3, 1, 1, 16, 8, 8, 0.5),
    (8, 16, 3, 1, 1, 16, 5, 7, 0.0),
    (7, 20, 3, 1, 1, 16, 6, 5, 0.3),
    (12, 24, 3, 2, 1, 8, 9, 9, 0.6),
    (5, 32, 3, 1, 0, 32, 7, 6, 0.25),
    (32, 16, 1, 2, 0, 16, 14, 14, 0.5),
    (9, 48, 1, 1, 0, 16, 3, 11, 0.7),
    (6, 4, 3, 2, 1, 4, 11, 4, 0.5),
    (10, 16, 3, 1, 1, 16, 4, 4, 1.0),      # all-zero: bias-only outputs
    (3, 64, 3, 2, 0, 16, 7, 7, 0.9),
]


def test_random_layers_bit_exact(csim, tmp_path):
    pairs = []
    for i, (n, c, k, s, p, cg, h, w, gs) in enumerate(SWEEP):
        layer = make_layer(n, c, k, cg, group_sparsity=gs, stride=s, padding=p, relu=bool(i % 2), seed=i,
                           name=f"sweep{i}")
        pairs.append((layer, random_input(c, h, w, seed=100 + i, bits=11 + i % 4)))
    results = csim.check(tmp_path, pairs)
    for layer, x in pairs:
        skip, dense = results[f"{layer.name}_skip"], results[f"{layer.name}_dense"]
        regs = layer_case(layer, x, csim.hw.lanes).writes   # hardware groups (Cg 32 -> 2 per group)
        assert (skip.groups, dense.groups) == (regs["NNZ"], regs["N"] * regs["G"])
        assert skip.compute_cycles <= dense.compute_cycles


def test_many_small_random_layers(csim, tmp_path):
    """40 seeded random layers of random shape, density and output stage in one testbench run."""
    rng = np.random.default_rng(7)
    pairs = []
    for i in range(40):
        k = int(rng.choice([1, 3]))
        c = int(rng.integers(1, 40))
        cg = int(rng.choice([4, 8, 16, 32]))
        if cg > c:
            cg = int(rng.choice([v for v in (1, 2, 4, 8, 16) if v <= c]))
        layer = make_layer(int(rng.integers(1, 20)), c, k, cg, group_sparsity=float(rng.random()),
                           in_group_density=float(rng.uniform(0.05, 1.0)), stride=int(rng.choice([1, 2])),
                           padding=int(rng.integers(0, k // 2 + 1)), relu=bool(rng.integers(2)), seed=1000 + i,
                           name=f"rand{i}")
        h, w = int(rng.integers(max(1, k - 2 * layer.padding), 13)), int(rng.integers(max(1, k - 2 * layer.padding), 13))
        if layer_needs(layer, h, w, csim.hw.lanes)["act"] > 1 << csim.hw.log2_act_depth:
            h = w = max(1, k - 2 * layer.padding)   # keep within the build's activation buffer
        pairs.append((layer, random_input(c, h, w, seed=2000 + i, bits=int(rng.integers(4, 16)))))
    csim.check(tmp_path, pairs)


def test_output_stage_edges(csim, tmp_path):
    """Full-scale inputs through extreme multipliers, shifts and 48-bit biases: rounding at
    shift 0/1/47, ReLU, saturation on both sides."""
    rng = np.random.default_rng(3)
    n = 12
    codes = rng.choice([-1, 0, 1], size=(n, 16, 3, 3)).astype(np.int8)
    mult = np.array([32767, -32768, 1, -1, 12345, -30000, 32767, -32768, 7, 16384, -1, 3])
    shift = np.array([0, 0, 1, 1, 47, 47, 20, 20, 3, 30, 0, 14])
    bias = np.array([2**47 - 1, -2**47, 0, 1, -1, 2**46, -(2**47 - 1), 12345678901, -3, 2**40, 0, -(2**30)])
    x = rng.choice([-32768, 32767, -1, 0, 1, 16384], size=(16, 6, 6)).astype(np.int16)
    pairs = [(TernaryConv(f"edge_relu{int(r)}", codes, mult, shift, bias, stride=1, padding=1, cg=16, relu=r), x)
             for r in (False, True)]
    csim.check(tmp_path, pairs)


@pytest.mark.parametrize("t7", TABLE7, ids=[t.name for t in TABLE7])
def test_table7_layers(csim, tmp_path, t7):
    """The three ResNet-20 layers of table 7: bit-exact with skipping on and off, exactly
    nnz vs N*G groups issued, and the modelled compute cycles shrink towards G / G_nz."""
    layer, x = table7_case(t7.name)
    results = csim.check(tmp_path, [(layer, x)])
    skip, dense = results[f"{t7.name}_skip"], results[f"{t7.name}_dense"]
    assert skip.groups == t7.nnz_groups and dense.groups == t7.groups
    speedup = dense.compute_cycles / skip.compute_cycles
    print(f"{t7.name}: modelled compute cycles {dense.compute_cycles} dense / {skip.compute_cycles} skip = "
          f"{speedup:.2f}x (ideal {t7.ideal:.2f}x, seed FPGA {t7.seed_speedup}x)")
    assert 1.0 < speedup <= t7.ideal


def test_errors_and_weight_reuse(csim, tmp_path):
    """Each error code ends the run with no output, leaving the documented beats unread; a
    failed load invalidates the stored weights; LOAD_WEIGHTS=0 reuses a good load."""
    layer = make_layer(16, 32, 3, 16, nnz_groups=20, seed=3, name="errs")
    cases = error_cases(layer, random_input(32, 9, 7, seed=1), csim.hw.lanes)
    run = csim.run(tmp_path, cases)
    assert run.failed == 0, run.output
    assert [run.cases[c.name].status for c in cases] == [c.status for c in cases]
    names = {v: k for k, v in REGMAP.error_codes.items()}
    assert {names[c.status] for c in cases} == set(REGMAP.layer_error_codes)


def test_identity_registers(csim, tmp_path):
    """ID, VERSION and HWCFG0/1 as regmap.json and the build define them (what check_identity reads)."""
    layer, x = table7_case("stage1")
    run = csim.run(tmp_path, [layer_case(layer, x[:, :4, :4], csim.hw.lanes)])
    assert run.hw["id"] == REGMAP.id and run.hw["version"] == REGMAP.version
    assert HwConfig.from_registers(run.hw["hwcfg0"], run.hw["hwcfg1"]) == csim.hw


def test_testbench_refuses_a_stream_without_tlast(csim, tmp_path):
    """C simulation cannot block: a case whose input never ends is reported, not run forever."""
    from dataclasses import replace
    layer, x = table7_case("stage3")
    case = layer_case(layer, x, csim.hw.lanes)
    run = csim.run(tmp_path, [replace(case, name="no_tlast", lasts=np.zeros(len(case.beats), dtype=bool)), case])
    assert run.failed == 1 and not run.cases["no_tlast"].passed and "no TLAST" in run.output
    assert run.cases[case.name].passed
