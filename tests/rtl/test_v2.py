"""Accelerator v2 (docs/accelerator-v2.md), built beside v1 from hw/rtl/v2/ (top pesto_accel_v2):
lint, layer mode through v1's own bench (sim/test_pesto_accel.py reads HWCFG0.CAPS where the two
differ) and network mode (sim/test_pesto_network.py: programs from pesto.hwspec.program,
outputs bit-exact against pesto.reference), on Verilator; a network-mode subset on Icarus.

The Verilator model of v2 (576 lanes) takes many minutes to compile, beyond CI's budget while v2
is not the default build: its tests run with PESTO_RTL_V2=1 (scripts/test.sh tests/rtl/test_v2.py).
"""

import os
import subprocess

import pytest

from pesto.sim.build import RTL_DIR, V2_TOP, build, rtl_sources_v2, run

pytestmark = pytest.mark.sim
verilator_v2 = pytest.mark.skipif(os.environ.get("PESTO_RTL_V2") != "1",
                                  reason="v2's Verilator model compiles for many minutes: set PESTO_RTL_V2=1 to run it")

LAYER_TESTS = ["test_registers", "test_smoke", "test_sweep", "test_sparsity", "test_table7",
               "test_back_to_back", "test_errors", "test_start_while_busy", "test_reset_mid_stream"]
NETWORK_TESTS = ["test_registers", "test_network", "test_subnets", "test_errors",
                 "test_start_while_busy_and_reset_mid_network"]


def test_v2_verilator_lint_clean():
    cmd = ["verilator", "--lint-only", "-Wall", f"-I{RTL_DIR}", "--top-module", V2_TOP,
           *map(str, rtl_sources_v2())]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr


@verilator_v2
@pytest.mark.slow
@pytest.mark.xdist_group("verilator-accel-v2")
@pytest.mark.parametrize("testcase", LAYER_TESTS)
def test_v2_layer_mode(testcase):
    run(build("verilator", V2_TOP, {}), "test_pesto_accel", testcase=testcase)


@verilator_v2
@pytest.mark.slow
@pytest.mark.xdist_group("verilator-accel-v2")
@pytest.mark.parametrize("testcase", NETWORK_TESTS)
def test_v2_network_mode(testcase):
    run(build("verilator", V2_TOP, {}), "test_pesto_network", testcase=testcase)


@pytest.mark.xdist_group("icarus-accel-v2")
def test_v2_icarus():
    """Network mode on Icarus in CI: registers after reset, a random network with every glue
    variant (skip, dense, a batch), every refusal reported in STATUS."""
    run(build("icarus", V2_TOP, {}), "test_pesto_network", testcase=["test_registers", "test_network", "test_errors"])


@pytest.mark.xdist_group("icarus-accel-v2")
def test_v2_icarus_layer_mode():
    """Layer mode on Icarus in CI: v1's registers, a smoke layer and v1's errors (each ending
    with v2's one zero word)."""
    run(build("icarus", V2_TOP, {}), "test_pesto_accel", testcase=["test_registers", "test_smoke", "test_errors"])
