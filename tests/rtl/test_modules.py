"""One cocotb bench per RTL module (sim/test_<module>.py), on Icarus: small builds, instant
compiles. The top-level bench (test_accel.py) covers the modules together on Verilator."""

import pytest

from pesto.sim.build import build, run

pytestmark = pytest.mark.sim

MODULES = [
    ("pesto_packer", {}),
    ("pesto_out_stage", {}),
    ("pesto_fifo", {"WIDTH": 67, "ADDR_WIDTH": 4}),
]


@pytest.mark.xdist_group("icarus-modules")
@pytest.mark.parametrize("module,params", MODULES, ids=[m for m, _ in MODULES])
def test_module_icarus(module, params):
    run(build("icarus", module, params), f"test_{module}")
