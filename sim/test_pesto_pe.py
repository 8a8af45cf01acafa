"""cocotb bench of pesto_pe: one processing element, its activation buffer modelled in Python.

The bench plays the scheduler: it broadcasts every tap of a list of groups for a run of
blocks, the PE's pixel advancing by NUM_PE each block (wrapping rows, stride 1 and 2, zero
padding), and checks each block's accumulator against a direct ternary convolution."""

from __future__ import annotations

import random

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from pesto.sim.build import sim_params


def origin(pixel, wo, stride, pad, w):
    oy, ox = divmod(pixel, wo)
    iy, ix = oy * stride - pad, ox * stride - pad
    return ix, iy, iy * w + ix


class TB:
    def __init__(self, dut, acts: np.ndarray):
        self.dut = dut
        self.lanes = int(sim_params().get("LANES", 16))
        self.acts = acts  # (entries, lanes) int16, address = (g*H + y)*W + x
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        cocotb.start_soon(self._ram())
        self.results = []
        cocotb.start_soon(self._monitor())

    async def _ram(self):
        while True:
            await RisingEdge(self.dut.clk)
            addr = self.dut.act_addr.value
            if addr.is_resolvable:
                row = self.acts[int(addr) % len(self.acts)].astype(np.uint16)
                self.dut.act_data.value = sum(int(v) << (16 * i) for i, v in enumerate(row))

    async def _monitor(self):
        while True:
            await RisingEdge(self.dut.clk)
            if str(self.dut.res_valid.value) == "1":
                self.results.append(self.dut.res.value.to_signed())

    def set_constants(self, p0, num_pe, h, w, ho, wo, stride, pad):
        d = self.dut
        ix, iy, org = origin(p0, wo, stride, pad, w)
        d.init_ix0.value, d.init_iy0.value, d.init_org.value = ix, iy, org
        dy, dx = divmod(num_pe, wo)
        d.step_x.value, d.step_y.value = dx * stride, dy * stride
        d.step_org.value = dy * stride * w + dx * stride
        d.wrap_x.value = wo * stride - pad
        d.wrap_dx.value, d.wrap_dy.value = -wo * stride, stride
        d.wrap_dorg.value = stride * w - wo * stride
        d.in_h.value, d.in_w.value = h, w


async def run_case(dut, seed, h, w, k, stride, pad, groups, nz_groups, num_pe, p0, blocks):
    rng = np.random.default_rng(seed)
    lanes = int(sim_params().get("LANES", 16))
    x = rng.integers(-2**15, 2**15, size=(groups, h, w, lanes)).astype(np.int16)
    tb = TB(dut, x.reshape(-1, lanes))
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    tb.set_constants(p0, num_pe, h, w, ho, wo, stride, pad)
    d = dut
    d.bc_valid.value = 0
    d.rst.value = 1
    d.init_wr.value = 1
    await ClockCycles(d.clk, 3)
    d.rst.value = 0
    d.init_wr.value = 0
    await ClockCycles(d.clk, 2)
    glist = sorted(rng.choice(groups, size=nz_groups, replace=False).tolist())
    codes = rng.choice([0, 1, 3], size=(groups, k, k, lanes))
    expected = []
    schedule = []  # (broadcast fields, codes) per cycle
    for b in range(blocks):
        pixel = p0 + b * num_pe
        oy, ox = divmod(pixel, wo)
        acc = 0
        for gi, g in enumerate(glist):
            for ky in range(k):
                for kx in range(k):
                    iy, ix = oy * stride - pad + ky, ox * stride - pad + kx
                    c = codes[g, ky, kx]
                    if 0 <= iy < h and 0 <= ix < w:
                        a = x[g, iy, ix].astype(np.int64)
                        acc += int(a[c == 1].sum() - a[c == 3].sum())
                    first = gi == 0 and ky == 0 and kx == 0
                    last = gi == len(glist) - 1 and ky == k - 1 and kx == k - 1
                    word = sum(int(v) << (2 * i) for i, v in enumerate(c))
                    schedule.append((dict(bc_first=int(first), bc_last=int(last), bc_blk0=int(b == 0),
                                          bc_off=g * h * w + ky * w + kx, bc_ky=ky, bc_kx=kx), word))
        if oy < ho:
            expected.append(acc)
    # broadcast one tap per cycle (with random gaps); codes follow two cycles later
    pending = [None, None]
    rnd = random.Random(seed)
    i = 0
    while i < len(schedule) or any(p is not None for p in pending):
        item = None
        if i < len(schedule) and rnd.random() > 0.2:
            item = schedule[i]
            i += 1
        if item:
            for name, value in item[0].items():
                getattr(d, name).value = value
            d.bc_valid.value = 1
        else:
            d.bc_valid.value = 0
        code = pending.pop(0)
        d.bc_codes.value = code if code is not None else 0
        pending.append(item[1] if item else None)
        await RisingEdge(d.clk)
    d.bc_valid.value = 0
    await ClockCycles(d.clk, 10)
    assert len(tb.results) == blocks, "one result per block"
    assert expected and tb.results[:len(expected)] == expected


@cocotb.test()
async def test_pe_3x3_pad(dut):
    await run_case(dut, 1, h=7, w=6, k=3, stride=1, pad=1, groups=3, nz_groups=2, num_pe=4, p0=3, blocks=10)


@cocotb.test()
async def test_pe_3x3_stride2(dut):
    await run_case(dut, 2, h=9, w=7, k=3, stride=2, pad=1, groups=2, nz_groups=2, num_pe=5, p0=1, blocks=4)


@cocotb.test()
async def test_pe_1x1(dut):
    await run_case(dut, 3, h=5, w=5, k=1, stride=1, pad=0, groups=4, nz_groups=3, num_pe=3, p0=2, blocks=7)


@cocotb.test()
async def test_pe_wide_block(dut):
    """More PEs than output columns: a block advances several rows at once."""
    await run_case(dut, 4, h=6, w=3, k=3, stride=1, pad=1, groups=1, nz_groups=1, num_pe=8, p0=7, blocks=2)
