"""cocotb bench of pesto_packer: values arriving 1 to 4 per beat leave as whole 64-bit words
in order; the final beat's word is zero padded and carries TLAST."""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from stream_tb import StreamSink, StreamSource


class TB:
    def __init__(self, dut, idle=0.0, backpressure=0.0, seed=1):
        self.dut = dut
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.source = StreamSource(dut.clk, dut.s_valid, dut.s_ready,
                                   {"data": dut.s_data, "count": dut.s_count, "final": dut.s_final},
                                   idle=idle, seed=seed)
        self.sink = StreamSink(dut.clk, dut.m_axis_tvalid, dut.m_axis_tready,
                               {"data": dut.m_axis_tdata, "last": dut.m_axis_tlast, "keep": dut.m_axis_tkeep},
                               backpressure=backpressure, seed=seed + 1)
        cocotb.start_soon(self.sink.run())

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)


def packet(rng: random.Random, beats: int):
    """Random beats (count 1..4, garbage above the count) and the values they carry."""
    items, values = [], []
    for i in range(beats):
        count = rng.choice([4, 4, 4, 1, 2, 3])
        vals = [rng.getrandbits(16) for _ in range(4)]
        values += vals[:count]
        word = sum(v << (16 * k) for k, v in enumerate(vals))
        items.append({"data": word, "count": count, "final": int(i == beats - 1)})
    return items, values


def expected_words(values):
    padded = values + [0] * (-len(values) % 4)
    return [sum(padded[i + k] << (16 * k) for k in range(4)) for i in range(0, len(padded), 4)]


async def run_packets(dut, idle, backpressure, seed):
    tb = TB(dut, idle, backpressure, seed)
    await tb.reset()
    rng = random.Random(seed)
    all_words, lasts = [], []
    for beats in [1, 2, 3, 5, 8, 17, 40]:
        items, values = packet(rng, beats)
        await tb.source.send(items)
        exp = expected_words(values)
        all_words += exp
        lasts += [0] * (len(exp) - 1) + [1]
    for _ in range(1000):
        if len(tb.sink.items) >= len(all_words):
            break
        await RisingEdge(dut.clk)
    await ClockCycles(dut.clk, 10)
    got = tb.sink.items
    assert [g["data"] for g in got] == all_words
    assert [g["last"] for g in got] == lasts
    assert all(g["keep"] == 0xFF for g in got)


@cocotb.test()
async def test_packer_streaming(dut):
    await run_packets(dut, 0.0, 0.0, 1)


@cocotb.test()
async def test_packer_idle_and_backpressure(dut):
    await run_packets(dut, 0.4, 0.5, 2)
