"""cocotb bench of pesto_loader: the input stream lands in the right buffers (parameters and
y0, indexer, codes, activation entries), and malformed streams are caught (short, long,
reserved code) while the stream is always consumed through TLAST."""

from __future__ import annotations

import logging
import random

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSource

from pesto import numerics
from pesto.sim.build import sim_params


class TB:
    def __init__(self, dut, idle=0.3):
        self.dut = dut
        self.lanes = int(sim_params().get("LANES", 16))
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        logging.getLogger(f"cocotb.{dut._name}.s_axis").setLevel(logging.WARNING)
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
        rng = random.Random(1)
        self.source.set_pause_generator(iter(lambda: rng.random() < idle, None))
        self.writes = {k: {} for k in ("param", "y0", "idx", "wgt", "act")}
        self.flags = {k: 0 for k in ("bad_code", "err_short", "err_long", "done")}
        cocotb.start_soon(self._monitor())

    async def _monitor(self):
        d = self.dut
        while True:
            await RisingEdge(d.clk)
            for k in self.writes:
                if str(getattr(d, f"{k}_wr").value) == "1":
                    self.writes[k][int(getattr(d, f"{k}_addr").value)] = int(getattr(d, f"{k}_data").value)
            for k in self.flags:
                if str(getattr(d, k).value) == "1":
                    self.flags[k] += 1

    async def run(self, words, n, idx_words, code_words, act_words, drop=0, expect_done=True):
        d = self.dut
        for k in self.writes:
            self.writes[k].clear()
        for k in self.flags:
            self.flags[k] = 0
        d.param_words.value = 2 * n
        d.idx_words.value = idx_words
        d.code_words.value = code_words
        d.act_words.value = act_words
        d.drop.value = drop
        d.abort.value = 0
        d.start.value = 1
        await RisingEdge(d.clk)
        d.start.value = 0
        await self.source.send(AxiStreamFrame(np.asarray(words, dtype="<u8").tobytes()))
        await self.source.wait()
        await ClockCycles(d.clk, 5)
        assert self.flags["done"] == int(expect_done)

    async def reset(self):
        d = self.dut
        d.start.value = 0
        d.rst.value = 1
        await ClockCycles(d.clk, 3)
        d.rst.value = 0
        await ClockCycles(d.clk, 2)


def make_stream(rng, lanes, n=5, idx_words=2, code_words=7, entries=6, bad=False):
    bias = rng.integers(-2**47, 2**47, size=n)
    mult = rng.integers(-2**15, 2**15, size=n)
    shift = rng.integers(0, 48, size=n)
    params = []
    for b, m, s in zip(bias, mult, shift):
        params += [int(b) & (2**64 - 1), (int(m) & 0xFFFF) | (int(s) << 16)]
    idx = rng.integers(0, 2**63, size=idx_words).tolist()
    codes = [int(sum(int(c) << (2 * i) for i, c in enumerate(rng.choice([0, 1, 3], size=32))))
             for _ in range(code_words)]
    if bad:
        codes[3] |= 0b10 << 40
        codes[3] &= ~(0b01 << 40)
    acts = rng.integers(0, 2**63, size=entries * lanes // 4).tolist()
    return params + idx + codes + acts, (bias, mult, shift, idx, codes, acts)


@cocotb.test()
async def test_loader_buffers(dut):
    tb = TB(dut)
    await tb.reset()
    rng = np.random.default_rng(1)
    words, (bias, mult, shift, idx, codes, acts) = make_stream(rng, tb.lanes)
    wpe = tb.lanes // 4
    await tb.run(words, 5, len(idx), len(codes), len(acts))
    assert not tb.flags["err_short"] and not tb.flags["err_long"] and not tb.flags["bad_code"]
    for n in range(5):
        assert tb.writes["param"][n] == ((int(bias[n]) & (2**48 - 1)) << 22) | (int(shift[n]) << 16) | (int(mult[n]) & 0xFFFF)
        y0 = int(numerics.output_stage(np.zeros((1, 1, 1)), [0], [shift[n]], [bias[n]], False).reshape(-1)[0])
        assert tb.writes["y0"][n] == y0 & 0xFFFF, (n, bias[n], shift[n])
    assert [tb.writes["idx"][i] for i in range(len(idx))] == idx
    assert [tb.writes["wgt"][i] for i in range(len(codes))] == codes
    for e in range(len(acts) // wpe):
        assert tb.writes["act"][e] == sum(acts[e * wpe + k] << (64 * k) for k in range(wpe))


@cocotb.test()
async def test_loader_activations_only(dut):
    tb = TB(dut)
    await tb.reset()
    rng = np.random.default_rng(2)
    acts = rng.integers(0, 2**63, size=3 * tb.lanes // 4).tolist()
    await tb.run(acts, 0, 0, 0, len(acts))
    assert not tb.writes["param"] and not tb.writes["wgt"] and len(tb.writes["act"]) == 3


@cocotb.test()
async def test_loader_errors(dut):
    tb = TB(dut)
    await tb.reset()
    rng = np.random.default_rng(3)
    words, parts = make_stream(rng, tb.lanes)
    sizes = dict(n=5, idx_words=2, code_words=7, act_words=len(parts[5]))
    await tb.run(words[:-2], **sizes)
    assert tb.flags["err_short"] == 1 and not tb.flags["err_long"]
    await tb.run(words + words[:9], **sizes)
    assert tb.flags["err_long"] == 1 and not tb.flags["err_short"]
    bad, _ = make_stream(rng, tb.lanes, bad=True)
    await tb.run(bad, **sizes)
    assert tb.flags["bad_code"] == 1
    # a configuration error drops the whole stream without writing anything
    await tb.run(words, **sizes, drop=1)
    assert not any(tb.writes.values()) and not tb.flags["err_short"] and not tb.flags["err_long"]
    # a good stream afterwards
    await tb.run(words, **sizes)
    assert not tb.flags["err_short"] and not tb.flags["err_long"] and len(tb.writes["wgt"]) == 7
