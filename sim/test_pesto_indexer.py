"""cocotb bench of pesto_indexer: the issue list, the compacted channel list, the zero-channel
flags and the NNZ check, for random indexers in both modes."""

from __future__ import annotations

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from pesto.sim.build import sim_params


class TB:
    def __init__(self, dut, words):
        self.dut = dut
        self.words = words
        self.p = sim_params()
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        cocotb.start_soon(self._ram())
        self.lists, self.chans, self.zeros = {}, {}, {}
        cocotb.start_soon(self._monitor())

    async def _ram(self):
        while True:
            await RisingEdge(self.dut.clk)
            addr = self.dut.idx_addr.value
            if addr.is_resolvable and int(addr) < len(self.words):
                self.dut.idx_data.value = int(self.words[int(addr)])

    async def _monitor(self):
        d = self.dut
        wa = int(self.p.get("WGT_ADDR_WIDTH", 11))
        while True:
            await RisingEdge(d.clk)
            if str(d.list_wr.value) == "1":
                v = int(d.list_data.value)
                self.lists[int(d.list_addr.value)] = (v >> (wa + 1), (v >> 1) & ((1 << wa) - 1), v & 1)
            if str(d.chan_wr.value) == "1":
                self.chans[int(d.chan_addr.value)] = (int(d.chan_channel.value), int(d.chan_first.value),
                                                      int(d.chan_count.value))
            if str(d.zero_wr.value) == "1":
                self.zeros[int(d.zero_addr.value)] = int(d.zero_data.value)


def expected(mask, skip, stride, wpg):
    n, g = mask.shape
    entries, chans, zeros, rank = [], [], [], 0
    for ni in range(n):
        first = len(entries)
        for gi in range(g):
            if mask[ni, gi] or not skip:
                entries.append((gi * stride, rank * wpg, int(mask[ni, gi])))
            rank += int(mask[ni, gi])
        count = len(entries) - first
        zeros.append(int(count == 0))
        if count:
            chans.append((ni, first, count))
    return entries, chans, zeros


async def run_case(dut, seed, n, g, density, skip, nnz_delta=0):
    rng = np.random.default_rng(seed)
    mask = rng.random((n, g)) < density
    bits = mask.reshape(-1)
    words = [int(sum(int(b) << i for i, b in enumerate(bits[k:k + 64]))) for k in range(0, len(bits), 64)]
    tb = TB(dut, words)
    stride, wpg = 7, 5  # group base g*H*W within the activation buffer
    d = dut
    d.start.value = 0
    d.rst.value = 1
    await ClockCycles(d.clk, 3)
    d.rst.value = 0
    d.skip.value = int(skip)
    d.num_channels.value = n
    d.groups.value = g
    d.group_stride.value = stride
    d.words_per_group.value = wpg
    d.nnz.value = int(mask.sum()) + nnz_delta
    await ClockCycles(d.clk, 2)
    d.start.value = 1
    await RisingEdge(d.clk)
    d.start.value = 0
    for _ in range(n * g * 2 + 100):
        await RisingEdge(d.clk)
        if str(d.done.value) == "1":
            break
    await ClockCycles(d.clk, 3)
    assert str(d.done.value) == "1"
    entries, chans, zeros = expected(mask, skip, stride, wpg)
    assert [tb.lists[i] for i in range(len(entries))] == entries
    assert [tb.chans[i] for i in range(len(chans))] == chans
    assert int(d.active_channels.value) == len(chans)
    assert [tb.zeros[i] for i in range(n)] == zeros
    assert int(d.mismatch.value) == int(nnz_delta != 0)


@cocotb.test()
async def test_indexer_skip(dut):
    await run_case(dut, 1, n=13, g=11, density=0.4, skip=True)


@cocotb.test()
async def test_indexer_dense(dut):
    await run_case(dut, 2, n=9, g=16, density=0.5, skip=False)


@cocotb.test()
async def test_indexer_all_zero(dut):
    await run_case(dut, 3, n=7, g=3, density=0.0, skip=True)


@cocotb.test()
async def test_indexer_nnz_mismatch(dut):
    await run_case(dut, 4, n=5, g=30, density=0.6, skip=True, nnz_delta=1)
