"""cocotb bench of pesto_fifo: order kept under random idle and backpressure, never more than
2**ADDR_WIDTH + 1 words inside, nothing lost or duplicated."""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from pesto.sim.build import sim_params
from stream_tb import StreamSink, StreamSource


class TB:
    def __init__(self, dut, idle, backpressure, seed):
        self.dut = dut
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.source = StreamSource(dut.clk, dut.s_valid, dut.s_ready, {"data": dut.s_data}, idle=idle, seed=seed)
        self.sink = StreamSink(dut.clk, dut.m_valid, dut.m_ready, {"data": dut.m_data},
                               backpressure=backpressure, seed=seed + 1)

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)


async def run_case(dut, idle, backpressure, seed, count=300):
    tb = TB(dut, idle, backpressure, seed)
    await tb.reset()
    width = int(sim_params().get("WIDTH", 67))
    rng = random.Random(seed)
    data = [rng.getrandbits(width) for _ in range(count)]
    cocotb.start_soon(tb.sink.run())
    await tb.source.send([{"data": d} for d in data])
    for _ in range(20 * count):
        if len(tb.sink.items) == count:
            break
        await RisingEdge(dut.clk)
    await ClockCycles(dut.clk, 5)
    assert [i["data"] for i in tb.sink.items] == data


@cocotb.test()
async def test_fifo_streaming(dut):
    await run_case(dut, 0.0, 0.0, 1)


@cocotb.test()
async def test_fifo_noise(dut):
    await run_case(dut, 0.3, 0.3, 2)


@cocotb.test()
async def test_fifo_fills(dut):
    """A stalled sink: the FIFO takes exactly its capacity (2**ADDR_WIDTH + 1), then releases
    it in order."""
    tb = TB(dut, 0.0, 0.0, 3)
    await tb.reset()
    depth = 1 << int(sim_params().get("ADDR_WIDTH", 10))
    dut.m_ready.value = 0
    accepted = 0
    dut.s_valid.value = 1
    for i in range(depth + 10):
        dut.s_data.value = i
        await RisingEdge(dut.clk)
        accepted += int(dut.s_ready.value)
    dut.s_valid.value = 0
    assert accepted == depth + 1, accepted  # the storage plus the output register
    cocotb.start_soon(tb.sink.run())
    await ClockCycles(dut.clk, depth + 20)
    assert [i["data"] for i in tb.sink.items] == list(range(depth + 1))
