"""The accelerator RTL as the driver sees it (SimAccelerator + protocol.run_layer), bit-exact
against the integer reference: the table 7 layers, random layers over shapes / Cg / group
sparsity, skipping on and off, weight reuse between runs, and a malformed run."""

import time

import numpy as np
import pytest

from pesto.driver.protocol import run_layer
from pesto.errors import HardwareError
from pesto.hwspec import REGMAP, input_stream, layer_registers, output_words
from pesto.reference.layer import run_conv
from pesto.sim.measure import TABLE7, make_layer, random_input, run_checked, table7_case

pytestmark = [pytest.mark.sim, pytest.mark.xdist_group("rtl_system")]


def test_identity(hw):
    assert hw.lanes == 16 and hw.num_pe >= 1 and hw.max_k >= 3


@pytest.mark.parametrize("t", TABLE7, ids=lambda t: t.name)
def test_table7_layer(accel, hw, t):
    layer, x = table7_case(t.name, seed=11)
    assert layer.codes.shape == (t.channels, t.channels, 3, 3) and layer.nnz_groups == t.nnz_groups
    y_dense, dense = run_checked(accel, layer, x, hw, skip=False)
    y_skip, skip = run_checked(accel, layer, x, hw, skip=True)
    assert np.array_equal(y_dense, y_skip)
    assert dense.groups_issued == t.groups
    assert skip.groups_issued == t.nnz_groups
    assert skip.compute_cycles < dense.compute_cycles
    assert 0 < dense.compute_cycles <= dense.cycles


# (N, C, kernel, stride, pad, cg, group sparsity, H, W, relu)
CASES = [
    (8, 16, 3, 1, 1, 16, 0.0, 6, 6, True),       # dense
    (8, 16, 3, 1, 1, 16, 1.0, 5, 7, True),       # every group zero: outputs are the bias alone
    (16, 48, 3, 2, 1, 16, 0.5, 9, 8, False),     # stride 2, odd size
    (12, 20, 1, 1, 0, 8, 0.3, 7, 5, True),       # 1x1, Cg < lanes, C not a multiple of Cg
    (10, 64, 1, 2, 0, 32, 0.6, 8, 8, False),     # 1x1 stride 2 (ResNet shortcut style), Cg > lanes
    (6, 32, 3, 1, 0, 16, 0.25, 6, 9, True),      # no padding
    (4, 3, 3, 1, 1, 4, 0.0, 10, 10, True),       # first-layer-like: 3 input channels
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "n{}c{}k{}s{}p{}cg{}gs{}_{}x{}".format(*c[:9]))
def test_random_layer(accel, hw, case):
    n, c, k, stride, pad, cg, gs, h, w, relu = case
    seed = abs(hash(case)) % 1000
    layer = make_layer(n, c, k, cg, group_sparsity=gs, stride=stride, padding=pad, relu=relu, seed=seed)
    x = random_input(c, h, w, seed=seed + 1)
    y_skip, s_skip = run_checked(accel, layer, x, hw, skip=True)
    y_dense, s_dense = run_checked(accel, layer, x, hw, skip=False)
    g_hw = s_dense.groups_issued // n
    assert s_skip.groups_issued == int(layer_registers(layer, h, w, hw.lanes)["NNZ"]) <= n * g_hw


def test_idle_and_backpressure(accel, hw):
    layer = make_layer(16, 32, 3, 16, group_sparsity=0.4, seed=5)
    x = random_input(32, 7, 6, seed=6)
    accel.set_noise(idle=0.3, backpressure=0.5, seed=9)
    try:
        run_checked(accel, layer, x, hw, skip=True)
    finally:
        accel.set_noise()


def test_back_to_back_with_weight_reuse(accel, hw):
    """Layers one after another without a reset; MODE.LOAD_WEIGHTS=0 reuses the last weights."""
    a = make_layer(16, 16, 3, 16, group_sparsity=0.5, seed=21, name="a")
    b = make_layer(8, 32, 1, 16, group_sparsity=0.25, seed=22, relu=False, name="b")
    xa, xa2 = random_input(16, 8, 8, seed=23), random_input(16, 8, 8, seed=24)
    xb = random_input(32, 6, 6, seed=25)
    assert np.array_equal(run_layer(accel, a, xa, hw)[0], run_conv(xa, a))
    assert np.array_equal(run_layer(accel, a, xa2, hw, load_weights=False)[0], run_conv(xa2, a))
    assert np.array_equal(run_layer(accel, b, xb, hw)[0], run_conv(xb, b))
    assert np.array_equal(run_layer(accel, b, xb, hw, load_weights=False)[0], run_conv(xb, b))


def test_short_stream_is_an_error_not_a_hang(accel, hw):
    """A stream cut short ends the run with STREAM_SHORT and no output: the transfer times out
    in simulated cycles (no hang), STATUS names the error, and the next run works."""
    layer = make_layer(8, 16, 3, 16, group_sparsity=0.5, seed=31)
    x = random_input(16, 6, 6, seed=32)
    for name, value in layer_registers(layer, 6, 6, hw.lanes).items():
        accel.write(REGMAP.offset(name), value)
    accel.read(REGMAP.offset("CTRL"))
    accel.write(REGMAP.offset("CTRL"), 1)
    words = input_stream(layer, x, hw.lanes)
    with pytest.raises(HardwareError, match="no complete output stream"):
        accel.transfer(words[:-3], output_words(8, 6, 6), timeout_s=60, max_cycles=20_000)
    status = accel.read(REGMAP.offset("STATUS"))
    assert REGMAP["STATUS"].field(status, "ERR_CODE") == REGMAP.error_codes["STREAM_SHORT"]
    assert accel.read(REGMAP.offset("CTRL")) & 0b100  # AP_IDLE: the engine is ready again
    run_checked(accel, layer, x, hw, skip=True)


def test_error_named_by_run_layer(accel, hw):
    """run_layer turns an engine error into a HardwareError naming it (here NNZ_MISMATCH: the
    NNZ register disagrees with the indexer's popcount)."""
    layer = make_layer(8, 16, 3, 16, group_sparsity=0.5, seed=41)
    x = random_input(16, 5, 5, seed=42)

    class WrongNnz:
        """Passes everything through to the simulation, but writes a wrong NNZ."""
        def read(self, offset):
            return accel.read(offset)

        def write(self, offset, value):
            accel.write(offset, value + 1 if offset == REGMAP.offset("NNZ") else value)

        def transfer(self, words, n_out, timeout_s):
            return accel.transfer(words, n_out, timeout_s, max_cycles=50_000)

    with pytest.raises(HardwareError, match="NNZ_MISMATCH"):
        run_layer(WrongNnz(), layer, x, hw, timeout_s=60)
    run_checked(accel, layer, x, hw, skip=True)


def test_a_refused_configuration_is_reported_at_once(accel, hw):
    """The engine refuses a layer its buffers cannot hold (CONFIG) and sends no output: the
    transfer reads STATUS while it waits and reports the refusal at once, not after its timeout."""
    layer = make_layer((1 << hw.log2_max_n) + 1, 16, 1, 16, group_sparsity=0.5, seed=61)   # too many channels
    x = random_input(16, 2, 2, seed=62)
    t0 = time.monotonic()
    with pytest.raises(HardwareError, match="CONFIG"):
        run_layer(accel, layer, x, hw, timeout_s=120)
    assert time.monotonic() - t0 < 30     # well inside the 120 s the transfer was allowed
    run_checked(accel, *table7_case("stage3", seed=63), hw, skip=True)   # and the engine still works


def test_icarus_smoke():
    """The same server and protocol on Icarus: identity and one small layer, both modes."""
    from pesto.driver.protocol import check_identity
    from pesto.sim.server import SimAccelerator
    layer = make_layer(8, 16, 3, 16, group_sparsity=0.5, seed=51)
    x = random_input(16, 5, 5, seed=52)
    with SimAccelerator("icarus", timeout_s=600) as bus:
        hw = check_identity(bus)
        y_skip, _ = run_checked(bus, layer, x, hw, skip=True)
        y_dense, _ = run_checked(bus, layer, x, hw, skip=False)
    assert np.array_equal(y_skip, y_dense)
