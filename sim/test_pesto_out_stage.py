"""cocotb bench of pesto_out_stage against pesto.numerics.output_stage, at the edges of every
field (accumulator, mult, shift 0..47, 48-bit bias, both saturations, ReLU)."""

from __future__ import annotations

import random

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from pesto import numerics

LANES = 4
CHANNELS = 16


class TB:
    def __init__(self, dut, params):
        self.dut = dut
        self.params = params  # list of (mult, shift, bias)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        cocotb.start_soon(self._param_ram())
        self.out = []
        cocotb.start_soon(self._monitor())

    async def _param_ram(self):
        """A synchronous-read RAM: the address seen at an edge is answered after it."""
        while True:
            await RisingEdge(self.dut.clk)
            addr = self.dut.param_addr.value
            if addr.is_resolvable:
                mult, shift, bias = self.params[int(addr) % len(self.params)]
                self.dut.param_data.value = ((bias & (2**48 - 1)) << 22) | (shift << 16) | (mult & 0xFFFF)

    async def _monitor(self):
        while True:
            await RisingEdge(self.dut.clk)
            if str(self.dut.m_valid.value) == "1":
                word = int(self.dut.m_data.value)
                vals = [(word >> (16 * i)) & 0xFFFF for i in range(LANES)]
                self.out.append(([v - 65536 if v >= 32768 else v for v in vals], int(self.dut.m_user.value)))

    async def reset(self):
        self.dut.s_valid.value = 0
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)


def edge_params(rng: random.Random):
    params = [(32767, 0, 0), (-32768, 0, 0), (1, 0, 2**47 - 1), (1, 0, -2**47), (-32768, 47, -2**47),
              (32767, 47, 2**47 - 1), (12345, 1, -1), (-7, 13, 4096), (1, 16, 0), (3, 2, 2)]
    while len(params) < CHANNELS:
        params.append((rng.randint(-32768, 32767), rng.randint(0, 47), rng.randint(-2**47, 2**47 - 1)))
    return params


async def run_case(dut, relu: bool, seed: int):
    rng = random.Random(seed)
    params = edge_params(rng)
    tb = TB(dut, params)
    dut.relu.value = int(relu)
    await tb.reset()
    accs = [2**31 - 1, -2**31, 0, 1, -1, 2, -2, 3]
    items = []
    for i in range(200):
        ch = i % CHANNELS
        lanes = [rng.choice(accs) if rng.random() < 0.3 else rng.randint(-2**31, 2**31 - 1) for _ in range(LANES)]
        items.append((ch, lanes, rng.randint(1, 4)))
    for ch, lanes, user in items:
        dut.s_valid.value = 1
        dut.s_channel.value = ch
        dut.s_acc.value = sum((a & 0xFFFFFFFF) << (32 * i) for i, a in enumerate(lanes))
        dut.s_user.value = user
        await RisingEdge(dut.clk)
        if rng.random() < 0.3:
            dut.s_valid.value = 0
            await RisingEdge(dut.clk)
    dut.s_valid.value = 0
    await ClockCycles(dut.clk, 10)
    assert len(tb.out) == len(items)
    for (ch, lanes, user), (got, got_user) in zip(items, tb.out):
        mult, shift, bias = params[ch]
        exp = numerics.output_stage(np.array(lanes)[:, None, None], np.array([mult] * LANES),
                                    np.array([shift] * LANES), np.array([bias] * LANES), relu).reshape(-1)
        assert got == exp.tolist(), (ch, lanes, params[ch], got, exp)
        assert got_user == user


@cocotb.test()
async def test_out_stage(dut):
    await run_case(dut, relu=False, seed=1)


@cocotb.test()
async def test_out_stage_relu(dut):
    await run_case(dut, relu=True, seed=2)
