"""One cocotb bench per RTL module (sim/test_<module>.py), on Icarus: small builds, instant
compiles. The top-level bench (test_accel.py) covers the modules together on Verilator."""

import pytest

from pesto.sim.build import build, run

pytestmark = pytest.mark.sim

# (module, parameters); pesto_pe_array, pesto_engine and the RAMs are exercised by the
# top-level bench only
MODULES = [
    ("pesto_axil_regs", {"LANES": 16, "NUM_PE": 16, "LOG2_ACT_DEPTH": 10}),
    ("pesto_loader", {"LANES": 16}),
    ("pesto_loader", {"LANES": 4}),
    ("pesto_indexer", {}),
    ("pesto_sched", {"LANES": 16, "NUM_PE": 4, "WGT_ADDR_WIDTH": 11, "LIST_WIDTH": 11,
                     "ACT_ADDR_WIDTH": 10, "COORD_WIDTH": 14}),
    ("pesto_sched", {"LANES": 8, "NUM_PE": 8, "WGT_ADDR_WIDTH": 11, "LIST_WIDTH": 11,
                     "ACT_ADDR_WIDTH": 10, "COORD_WIDTH": 14}),
    ("pesto_pe", {"LANES": 8, "ADDR_WIDTH": 10, "COORD_WIDTH": 14}),
    ("pesto_pe", {"LANES": 16, "ADDR_WIDTH": 10, "COORD_WIDTH": 14}),
    ("pesto_drain", {"NUM_PE": 8, "FIFO_DEPTH": 6}),
    ("pesto_out_stage", {}),
    ("pesto_fifo", {"WIDTH": 67, "ADDR_WIDTH": 4}),
    ("pesto_emitter", {}),
    ("pesto_packer", {}),
    # v2 (hw/rtl/v2/)
    ("pesto_add_lanes", {"LANES": 16}),
    ("pesto_add_lanes", {"LANES": 4}),
    ("pesto_fat_pe", {"LANES": 16, "GROUP_CYCLES": 2, "N_WIDTH": 9}),
    ("pesto_fat_pe", {"LANES": 4, "GROUP_CYCLES": 4, "N_WIDTH": 4}),
    ("pesto_fat_pe", {"LANES": 16, "GROUP_CYCLES": 1, "N_WIDTH": 6}),
]


def _id(case):
    module, params = case
    return module + "".join(f"-{k}{v}" for k, v in params.items() if k in ("LANES", "NUM_PE", "GROUP_CYCLES"))


@pytest.mark.xdist_group("icarus-modules")
@pytest.mark.parametrize("module,params", MODULES, ids=[_id(c) for c in MODULES])
def test_module_icarus(module, params):
    run(build("icarus", module, params), f"test_{module}")
