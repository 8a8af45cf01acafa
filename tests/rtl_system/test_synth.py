"""yosys synth_xilinx -family xc7 of the PYNQ-Z1 builds: accelerator v2 (pesto_accel_v2, the network
engine) within issue 11's limits (70 % of the LUTs, 90 % of the BRAM36, no DSP in its PEs), and
v1 (pesto_accel, the layer engine the RTL bitstream still packages) within 70 % of the LUTs.

Results are keyed by the RTL's contents, the script and the yosys version. The default build
takes yosys several minutes, so its result is also kept in hw/synth/results/ (written by
benchmarks/rtl/speedup.py): on exactly that RTL the fit test reads it, after any RTL change it
runs yosys again. The PE-array test always runs yosys (a 2-PE array: the same PE, seconds)."""

import pytest

from pesto.sim.build import V2_TOP
from pesto.sim.synth import XC7Z020, summarize, synthesize

pytestmark = pytest.mark.xdist_group("rtl_synth")

LUT_BUDGET = 0.70   # of the device: the rest is for the AXI DMA, interconnect and PS glue
BRAM_BUDGET = 0.90  # of the BRAM36 tiles (issue 11)


def test_cell_mapping():
    s = summarize({"LUT6": 10, "LUT2": 3, "INV": 1, "RAM64M": 2, "SRLC32E": 5, "FDRE": 7, "FDSE": 1,
                   "RAMB36E1": 3, "RAMB18E1": 3, "DSP48E1": 2, "CARRY4": 4, "MUXF7": 1})
    assert (s["lut_logic"], s["lut_memory"], s["lut"]) == (14, 13, 27)
    assert (s["ff"], s["bram36"], s["dsp"], s["carry4"]) == (8, 4.5, 2, 4)
    assert s["other_cells"] == {}


def test_pe_array_uses_no_dsp():
    r = synthesize({"NUM_PE": 2}, top="pesto_pe_array", use_cache=False)
    assert r["source"] == "yosys"
    assert r["dsp"] == 0, f"the add/sub PE array maps {r['dsp']} DSP48E1: {r['cells']}"
    assert r["lut"] > 500 and r["carry4"] > 0, "implausibly small: did the PEs get optimised away?"


def test_default_build_fits_xc7z020():
    r = synthesize()
    assert r["other_cells"] == {}, f"yosys produced cells the summary does not count: {r['other_cells']}"
    assert r["lut"] <= LUT_BUDGET * XC7Z020["lut"], f"{r['lut']} LUTs exceed {LUT_BUDGET:.0%} of the xc7z020"
    assert r["ff"] <= XC7Z020["ff"]
    assert r["bram36"] <= XC7Z020["bram36"]
    assert r["dsp"] <= XC7Z020["dsp"]
    assert r["lut"] > 1000 and r["ff"] > 500, "implausibly small: did the engine get optimised away?"


def test_v2_fat_pe_uses_no_dsp():
    """The DSP48s of v2 are the add unit's rescaling and the output stage's multipliers; its
    processing elements only add (one PE of the default build: seconds)."""
    r = synthesize({"LANES": 16, "GROUP_CYCLES": 2, "N_WIDTH": 9}, top="pesto_fat_pe", use_cache=False)
    assert r["dsp"] == 0, f"pesto_fat_pe maps {r['dsp']} DSP48E1: {r['cells']}"
    assert r["lut"] > 1000 and r["carry4"] > 100, "implausibly small: did the adder tree get optimised away?"


def test_v2_default_build_fits_xc7z020():
    r = synthesize(top=V2_TOP)
    assert r["other_cells"] == {}, f"yosys produced cells the summary does not count: {r['other_cells']}"
    assert r["lut"] <= LUT_BUDGET * XC7Z020["lut"], f"{r['lut']} LUTs exceed {LUT_BUDGET:.0%} of the xc7z020"
    assert r["bram36"] <= BRAM_BUDGET * XC7Z020["bram36"], f"{r['bram36']} BRAM36 exceed {BRAM_BUDGET:.0%}"
    assert r["ff"] <= XC7Z020["ff"] and r["dsp"] <= XC7Z020["dsp"]
    assert r["lut"] > 10000 and r["ff"] > 5000, "implausibly small: did the engine get optimised away?"
