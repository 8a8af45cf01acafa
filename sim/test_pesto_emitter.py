"""cocotb bench of pesto_emitter: channels in order, skipped channels synthesised from y0 (ReLU
applied), computed channels forwarded from the FIFO, final beat marked, under FIFO idle and
packer backpressure."""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from stream_tb import StreamSink, StreamSource


class TB:
    def __init__(self, dut, zero, y0, seed):
        self.dut = dut
        self.zero, self.y0 = zero, y0
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        cocotb.start_soon(self._ram())
        self.fifo = StreamSource(dut.clk, dut.fifo_valid, dut.fifo_ready,
                                 {"data": dut.fifo_data, "count": dut.fifo_count}, idle=0.3, seed=seed)
        self.sink = StreamSink(dut.clk, dut.m_valid, dut.m_ready,
                               {"data": dut.m_data, "count": dut.m_count, "final": dut.m_final},
                               backpressure=0.3, seed=seed + 1)

    async def _ram(self):
        while True:
            await RisingEdge(self.dut.clk)
            addr = self.dut.ch_addr.value
            if addr.is_resolvable and int(addr) < len(self.zero):
                self.dut.ch_zero.value = self.zero[int(addr)]
                self.dut.ch_y0.value = self.y0[int(addr)] & 0xFFFF


def values_of(items):
    out = []
    for it in items:
        out += [(it["data"] >> (16 * k)) & 0xFFFF for k in range(it["count"])]
    return out


async def run_case(dut, seed, channels, pixels, relu):
    rng = random.Random(seed)
    zero = [int(rng.random() < 0.4) for _ in range(channels)]
    y0 = [rng.randint(-32768, 32767) for _ in range(channels)]
    tb = TB(dut, zero, y0, seed)
    d = dut
    d.start.value = 0
    d.rst.value = 1
    await ClockCycles(d.clk, 3)
    d.rst.value = 0
    d.num_channels.value = channels
    d.pixels.value = pixels
    d.relu.value = int(relu)
    await ClockCycles(d.clk, 2)
    # FIFO words of the computed channels: blocks of up to 16 values, 4 per word
    words, expected = [], []
    for c in range(channels):
        if zero[c]:
            v = max(y0[c], 0) if relu else y0[c]
            expected += [v & 0xFFFF] * pixels
            continue
        vals = [rng.getrandbits(16) for _ in range(pixels)]
        expected += vals
        for b in range(0, pixels, 16):
            block = vals[b:b + 16]
            for w in range(0, len(block), 4):
                chunk = block[w:w + 4]
                garbage = [rng.getrandbits(16) for _ in range(4 - len(chunk))]
                words.append({"data": sum(v << (16 * k) for k, v in enumerate(chunk + garbage)),
                              "count": len(chunk)})
    cocotb.start_soon(tb.sink.run())
    d.start.value = 1
    await RisingEdge(d.clk)
    d.start.value = 0
    await tb.fifo.send(words)
    for _ in range(10 * channels * pixels + 200):
        if tb.sink.items and tb.sink.items[-1]["final"]:
            break
        await RisingEdge(d.clk)
    await ClockCycles(d.clk, 10)
    assert values_of(tb.sink.items) == expected
    assert [it["final"] for it in tb.sink.items].count(1) == 1 and tb.sink.items[-1]["final"] == 1


@cocotb.test()
async def test_emitter(dut):
    await run_case(dut, 1, channels=9, pixels=37, relu=False)


@cocotb.test()
async def test_emitter_relu_small_channels(dut):
    await run_case(dut, 2, channels=12, pixels=3, relu=True)


@cocotb.test()
async def test_emitter_one_pixel(dut):
    await run_case(dut, 3, channels=5, pixels=1, relu=False)
