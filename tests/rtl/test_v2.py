"""Accelerator v2 (docs/accelerator-v2.md), built beside v1 from hw/rtl/v2/ (top pesto_accel_v2):
lint, layer mode through v1's own bench (sim/test_pesto_accel.py reads HWCFG0.CAPS where the two
differ) and network mode (sim/test_pesto_network.py: programs from pesto.hwspec.program,
outputs bit-exact against pesto.reference), on Verilator; a smoke subset on Icarus."""

import subprocess

import pytest

from pesto.sim.build import RTL_DIR, V2_TOP, build, rtl_sources_v2, run

pytestmark = pytest.mark.sim

LAYER_TESTS = ["test_registers", "test_smoke", "test_sweep", "test_sparsity", "test_table7",
               "test_back_to_back", "test_errors", "test_start_while_busy", "test_reset_mid_stream"]
NETWORK_TESTS = ["test_registers", "test_network", "test_subnets", "test_errors",
                 "test_start_while_busy_and_reset_mid_network"]


def test_v2_verilator_lint_clean():
    cmd = ["verilator", "--lint-only", "-Wall", f"-I{RTL_DIR}", "--top-module", V2_TOP,
           *map(str, rtl_sources_v2())]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr


@pytest.mark.xdist_group("verilator-accel-v2")
@pytest.mark.parametrize("testcase", LAYER_TESTS)
def test_v2_layer_mode(testcase):
    run(build("verilator", V2_TOP, {}), "test_pesto_accel", testcase=testcase)


@pytest.mark.xdist_group("verilator-accel-v2")
@pytest.mark.parametrize("testcase", NETWORK_TESTS)
def test_v2_network_mode(testcase):
    run(build("verilator", V2_TOP, {}), "test_pesto_network", testcase=testcase)


@pytest.mark.xdist_group("icarus-accel-v2")
def test_v2_icarus():
    run(build("icarus", V2_TOP, {}), "test_pesto_network", testcase=["test_registers", "test_network", "test_errors"])
