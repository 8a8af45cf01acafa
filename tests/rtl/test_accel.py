"""pesto_accel end to end (sim/test_pesto_accel.py) on Verilator and, as a smoke subset, Icarus.

One Verilator build per parameter set, shared by every test of its xdist group (the build
helper caches it under build/sim/ and locks it, so parallel workers never race).
"""

import pytest

from pesto.sim.build import build, run

pytestmark = pytest.mark.sim

# the PYNQ-Z1 configuration (the RTL's defaults)
DEFAULT = {}
# another point of the parameter space: narrow groups (8 taps per code word), a PE count
# that is not a power of two,
# small buffers
SMALL = {"LANES": 4, "NUM_PE": 12, "LOG2_ACT_DEPTH": 9, "LOG2_WGT_DEPTH": 10, "LOG2_MAX_N": 6,
         "LOG2_MAX_PIX": 9, "LOG2_OUT_FIFO": 6}
# wide groups (one tap per code word) on Icarus
WIDE = {"LANES": 32, "NUM_PE": 4}

TOP_TESTS = ["test_registers", "test_smoke", "test_sweep", "test_sparsity", "test_table7",
             "test_back_to_back", "test_errors", "test_start_while_busy", "test_reset_mid_stream"]


@pytest.mark.xdist_group("verilator-accel-default")
@pytest.mark.parametrize("testcase", TOP_TESTS)
def test_accel_verilator(testcase):
    run(build("verilator", "pesto_accel", DEFAULT), "test_pesto_accel", testcase=testcase)


@pytest.mark.xdist_group("verilator-accel-small")
@pytest.mark.parametrize("testcase", ["test_registers", "test_sweep", "test_errors", "test_back_to_back"])
def test_accel_verilator_small(testcase):
    run(build("verilator", "pesto_accel", SMALL), "test_pesto_accel", testcase=testcase)


@pytest.mark.xdist_group("icarus-accel")
@pytest.mark.parametrize("params", [DEFAULT, WIDE], ids=["default", "wide"])
def test_accel_icarus(params):
    run(build("icarus", "pesto_accel", params), "test_pesto_accel", testcase=["test_registers", "test_smoke"])
