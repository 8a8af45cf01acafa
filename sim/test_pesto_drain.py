"""cocotb bench of pesto_drain: finished blocks leave as words of 4 accumulators in order with
their channel and valid count, banks are released after their last word, and no word is
issued without output FIFO credit."""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from pesto.sim.build import sim_params


@cocotb.test()
async def test_drain(dut):
    p = sim_params()
    num_pe, depth = int(p["NUM_PE"]), int(p["FIFO_DEPTH"])
    rng = random.Random(1)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    d = dut
    d.res_valid.value = 0
    d.fifo_pop.value = 0
    d.rst.value = 1
    await ClockCycles(d.clk, 3)
    d.rst.value = 0
    await ClockCycles(d.clk, 2)

    blocks = []
    for i in range(12):
        count = [num_pe, num_pe - 1, 1, num_pe - 2, rng.randint(1, num_pe)][i % 5]
        blocks.append((i % 7, count, [rng.getrandbits(32) for _ in range(num_pe)]))
    words, releases, in_fifo = [], 0, 0
    free_banks, sent, cycle = 2, 0, 0
    popping = False
    while len(words) < sum((c + 3) // 4 for _, c, _ in blocks) and cycle < 5000:
        cycle += 1
        # the scheduler's rule: a block only when a bank is free
        if sent < len(blocks) and free_banks and rng.random() < 0.5:
            ch, count, accs = blocks[sent]
            d.res_valid.value = 1
            d.res.value = sum(a << (32 * k) for k, a in enumerate(accs))
            d.res_channel.value = ch
            d.res_count.value = count
            free_banks -= 1
            sent += 1
        else:
            d.res_valid.value = 0
        # the FIFO drains only after it has been seen full once
        pop = popping and in_fifo > 0 and rng.random() < 0.7
        d.fifo_pop.value = int(pop)
        await RisingEdge(d.clk)
        in_fifo -= int(pop)
        if str(d.bank_release.value) == "1":
            free_banks += 1
            releases += 1
        if str(d.os_valid.value) == "1":
            n = int(d.os_count.value)
            words.append((int(d.os_channel.value), n, int(d.os_acc.value) & ((1 << (32 * n)) - 1)))
            in_fifo += 1
        assert in_fifo <= depth, "a word without FIFO credit"
        if in_fifo == depth:
            popping = True
    d.res_valid.value = 0
    expected = []
    for ch, count, accs in blocks:
        for w in range(0, count, 4):
            n = min(4, count - w)
            expected.append((ch, n, sum(a << (32 * k) for k, a in enumerate(accs[w:w + n]))))
    assert popping, "the FIFO never filled: credits untested"
    assert words == expected
    await ClockCycles(d.clk, 5)
    assert releases == len(blocks)
