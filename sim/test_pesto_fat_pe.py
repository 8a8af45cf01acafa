"""cocotb bench of pesto_fat_pe (v2's processing element) against a plain integer model: random
entries of ternary codes over 16-bit taps (the int16 extremes included, -32768 under a -1 code
too), channels that repeat at every distance the pipeline can see (consecutive entries of one
channel take the forward path), first entries that load, three banks; then every accumulator read
back through the drain port. A second test pins the pipeline depth the engine waits for
(pesto_fat_pe_latency in hw/rtl/pesto_fat_pe.vh): the sum is in the RAM after exactly that many
edges and not one edge sooner. The slice width and N_WIDTH are read from the DUT."""

from __future__ import annotations

import math
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

EDGES = [32767, -32768, 0, 1, -1, 2, -2, 16384, -16384, 255, -256, 32766, -32767]
CODE = {0: 0, 1: 1, -1: 3}


def slice_of(dut) -> int:
    return len(dut.codes) // 18


def latency(terms: int) -> int:
    """pesto_fat_pe_latency: one edge per adder-tree level, one to accumulate and write."""
    return math.ceil(math.log2(terms)) + 1


def pack(vals, width: int) -> int:
    return sum((int(v) & ((1 << width) - 1)) << (width * i) for i, v in enumerate(vals))


def signed32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


async def reset(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.in_valid.value = 0
    dut.in_first.value = 0
    dut.in_n.value = 0
    dut.in_bank.value = 0
    dut.taps.value = 0
    dut.codes.value = 0
    dut.rd_bank.value = 0
    dut.rd_addr.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0


def drive(dut, taps, codes, valid: bool, first: bool, n: int, bank: int):
    dut.taps.value = pack(taps, 16)
    dut.codes.value = pack([CODE[c] for c in codes], 2)
    dut.in_valid.value = int(valid)
    dut.in_first.value = int(first)
    dut.in_n.value = n
    dut.in_bank.value = bank


async def read_acc(dut, bank: int, n: int) -> int:
    await FallingEdge(dut.clk)
    dut.rd_bank.value = bank
    dut.rd_addr.value = n
    await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    return signed32(int(dut.rd_data.value))


@cocotb.test()
async def test_random_entries(dut):
    terms = 9 * slice_of(dut)
    n_max = 1 << len(dut.in_n)
    rng = random.Random(5)
    await reset(dut)
    acc: dict[tuple[int, int], int] = {}
    channels = [rng.randrange(n_max) for _ in range(4)] + [n_max - 1, 0]
    bank = 0
    for i in range(250):
        valid = rng.random() < 0.85
        if rng.random() < 0.05:
            bank = rng.randrange(3)
        n = rng.choice(channels)
        extreme = rng.random() < 0.1
        taps = [rng.choice(EDGES) if extreme or rng.random() < 0.2 else rng.randint(-32768, 32767)
                for _ in range(terms)]
        density = rng.choice([0.0, 0.1, 0.5, 1.0])
        codes = [rng.choice([1, -1]) if rng.random() < density else 0 for _ in range(terms)]
        if extreme and rng.random() < 0.5:
            taps, codes = [-32768] * terms, [-1] * terms          # the largest group sum
        first = (bank, n) not in acc or rng.random() < 0.2
        await FallingEdge(dut.clk)
        drive(dut, taps, codes, valid, first, n, bank)
        if valid:
            s = sum(t * c for t, c in zip(taps, codes))
            acc[(bank, n)] = signed32((0 if first else acc[(bank, n)]) + s)
    await FallingEdge(dut.clk)
    dut.in_valid.value = 0
    for _ in range(2 * latency(terms)):
        await RisingEdge(dut.clk)
    for (b, n), want in sorted(acc.items()):
        got = await read_acc(dut, b, n)
        assert got == want, f"bank {b} channel {n}: {got} != {want}"


@cocotb.test()
async def test_latency(dut):
    terms = 9 * slice_of(dut)
    depth = latency(terms)
    await reset(dut)
    dut.rd_bank.value = 1
    dut.rd_addr.value = 3
    for value in (7, -32768):
        taps = [value] + [0] * (terms - 1)
        codes = [-1 if value < 0 else 1] + [0] * (terms - 1)
        want = abs(value)
        await FallingEdge(dut.clk)
        drive(dut, taps, codes, True, True, 3, 1)
        await RisingEdge(dut.clk)               # edge 1 samples the entry
        await FallingEdge(dut.clk)
        dut.in_valid.value = 0
        seen = []
        for _ in range(depth + 2):
            await RisingEdge(dut.clk)
            await ReadOnly()
            seen.append(signed32(int(dut.rd_data.value)) if dut.rd_data.value.is_resolvable else None)
        # after edge k (k = 2 ..) rd_data holds the RAM as it was before edge k: the write at
        # edge `depth` shows after edge depth + 1 and not after edge depth
        assert seen[depth - 1] == want, (value, depth, seen)
        assert seen[depth - 2] != want, (value, depth, seen)
