"""cocotb bench of pesto_axil_regs: ap_ctrl_hs start/done/idle/ready semantics, a start while
busy, HWCFG from the parameters, read-back, ISR toggle-on-write and the interrupt."""

from __future__ import annotations

import logging

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from pesto.hwspec import REGMAP, HwConfig
from pesto.sim.build import sim_params

CTRL = REGMAP["CTRL"]


class TB:
    def __init__(self, dut):
        self.dut = dut
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        logging.getLogger(f"cocotb.{dut._name}.s_axil").setLevel(logging.WARNING)
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        self.starts = 0
        cocotb.start_soon(self._count_starts())

    async def _count_starts(self):
        while True:
            await RisingEdge(self.dut.clk)
            if str(self.dut.start.value) == "1":
                self.starts += 1

    async def reset(self):
        d = self.dut
        d.busy.value = 0
        d.done.value = 0
        d.err_code.value = 0
        d.cycles.value = 0
        d.compute_cycles.value = 0
        d.groups_issued.value = 0
        d.rst.value = 1
        await ClockCycles(d.clk, 3)
        d.rst.value = 0
        await ClockCycles(d.clk, 2)

    async def read(self, name):
        return await self.axil.read_dword(REGMAP.offset(name))

    async def write(self, name, value):
        await self.axil.write_dword(REGMAP.offset(name), value)


@cocotb.test()
async def test_ap_ctrl(dut):
    tb = TB(dut)
    await tb.reset()
    p = sim_params()
    hw = HwConfig.from_registers(await tb.read("HWCFG0"), await tb.read("HWCFG1"))
    assert (hw.lanes, hw.num_pe, hw.log2_act_depth) == (p["LANES"], p["NUM_PE"], p["LOG2_ACT_DEPTH"])
    assert await tb.read("ID") == REGMAP.id
    assert CTRL.field(await tb.read("CTRL"), "AP_IDLE") == 1
    await tb.write("GIE", 1)
    await tb.write("IER", 3)

    # start: accepted the next cycle (the engine then reports busy)
    await tb.write("CTRL", 1)
    await ClockCycles(dut.clk, 2)
    assert tb.starts == 1
    dut.busy.value = 1
    ctrl = await tb.read("CTRL")
    assert CTRL.field(ctrl, "AP_START") == 0 and CTRL.field(ctrl, "AP_IDLE") == 0
    assert CTRL.field(ctrl, "AP_READY") == 1
    assert CTRL.field(await tb.read("CTRL"), "AP_READY") == 0, "AP_READY is clear-on-read"
    assert int(dut.interrupt.value) == 1, "ISR.READY with IER.READY"
    await tb.write("ISR", 2)
    assert int(dut.interrupt.value) == 0

    # a start while busy is ignored and flagged
    await tb.write("CTRL", 1)
    await ClockCycles(dut.clk, 3)
    assert tb.starts == 1
    assert REGMAP["STATUS"].field(await tb.read("STATUS"), "START_IGNORED") == 1

    # done: AP_DONE sticky until CTRL is read, ISR.DONE, interrupt, counters and error visible
    dut.err_code.value = 4
    dut.cycles.value = 1234
    dut.busy.value = 0
    dut.done.value = 1
    await RisingEdge(dut.clk)
    dut.done.value = 0
    assert REGMAP["STATUS"].field(await tb.read("STATUS"), "ERR_CODE") == 4
    assert await tb.read("CYCLES") == 1234
    assert int(dut.interrupt.value) == 1
    assert await tb.read("ISR") == 1
    ctrl = await tb.read("CTRL")
    assert CTRL.field(ctrl, "AP_DONE") == 1 and CTRL.field(ctrl, "AP_IDLE") == 1
    assert CTRL.field(await tb.read("CTRL"), "AP_DONE") == 0
    await tb.write("GIE", 0)
    assert int(dut.interrupt.value) == 0

    # the next accepted start clears START_IGNORED
    await tb.write("CTRL", 1)
    await ClockCycles(dut.clk, 2)
    assert tb.starts == 2
    assert REGMAP["STATUS"].field(await tb.read("STATUS"), "START_IGNORED") == 0


@cocotb.test()
async def test_config_readback(dut):
    tb = TB(dut)
    await tb.reset()
    names = ["MODE", "N", "G", "IN_H", "IN_W", "KERNEL", "OUT_H", "OUT_W", "NNZ", "FLAGS"]
    for i, name in enumerate(names):
        await tb.write(name, 0xA5000000 + i)
    for i, name in enumerate(names):
        assert await tb.read(name) == 0xA5000000 + i
    assert int(dut.cfg_nnz.value) == 0xA5000008
    await tb.axil.write(REGMAP.offset("G") + 1, b"\x77")  # one byte lane
    assert await tb.read("G") == 0xA5007702
    assert await tb.axil.read_dword(0xFC) == 0, "unmapped addresses read zero"
