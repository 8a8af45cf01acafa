"""cocotb bench of pesto_add_lanes (v2's residual add and ReLU unit) against pesto.numerics:
every pair of rescalings an operand can have (left 0..15, right 1..16, and a right shift past 16,
which must act as 16), with edge values (the int16 extremes, the rounding ties), add on and off,
ReLU on and off, one new word per cycle. LANES is read from the DUT."""

from __future__ import annotations

import random

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from pesto import numerics

LATENCY = 2
EDGES = [32767, -32768, 0, 1, -1, 2, -2, 3, -3, 16384, -16384, 255, -256, 32766, -32767]
# (lsh, rsh) of one operand; rsh 17 and 31 must give what 16 gives
SHIFTS = [(l, 0) for l in range(16)] + [(0, r) for r in range(1, 17)] + [(0, 17), (0, 31)]


def lanes_of(dut) -> int:
    return len(dut.a) // 16


def rescale(v: np.ndarray, lsh: int, rsh: int) -> np.ndarray:
    return numerics.rescale(v, 0, lsh) if rsh == 0 else numerics.rescale(v, min(rsh, 16), 0)


def expected(a, b, sa, sb, add: bool, relu: bool) -> list[int]:
    v = rescale(a, *sa) + (rescale(b, *sb) if add else 0)
    if relu:
        v = np.maximum(v, 0)
    return numerics.saturate(v).tolist()


def pack(vals) -> int:
    return sum((int(v) & 0xFFFF) << (16 * i) for i, v in enumerate(vals))


def unpack(word: int, lanes: int) -> list[int]:
    vals = [(word >> (16 * i)) & 0xFFFF for i in range(lanes)]
    return [v - 65536 if v >= 32768 else v for v in vals]


@cocotb.test()
async def test_every_rescaling(dut):
    lanes = lanes_of(dut)
    rng = random.Random(11)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    items = []
    for sa in SHIFTS:
        for sb in SHIFTS:
            add = rng.random() < 0.85
            relu = rng.random() < 0.3
            pick = lambda: rng.choice(EDGES) if rng.random() < 0.4 else rng.randint(-32768, 32767)
            a = np.array([pick() for _ in range(lanes)], dtype=np.int64)
            b = np.array([pick() for _ in range(lanes)], dtype=np.int64)
            items.append((a, b, sa, sb, add, relu))
    got = []
    for a, b, sa, sb, add, relu in items + [items[0]] * LATENCY:
        await FallingEdge(dut.clk)
        dut.a.value = pack(a)
        dut.b.value = pack(b)
        dut.lsh_a.value, dut.rsh_a.value = sa
        dut.lsh_b.value, dut.rsh_b.value = sb
        dut.add.value = int(add)
        dut.relu.value = int(relu)
        await RisingEdge(dut.clk)
        await ReadOnly()
        got.append(unpack(int(dut.y.value), lanes) if dut.y.value.is_resolvable else None)
    # the word driven before edge i is in y after edge i + LATENCY - 1
    for i, (a, b, sa, sb, add, relu) in enumerate(items):
        exp = expected(a, b, sa, sb, add, relu)
        assert got[i + LATENCY - 1] == exp, (i, sa, sb, add, relu, a.tolist(), b.tolist(), got[i + LATENCY - 1], exp)
