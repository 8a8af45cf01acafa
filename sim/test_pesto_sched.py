"""cocotb bench of pesto_sched: the broadcast order (channel, block, issue-list entry, tap),
addresses, flags and codes, and the property the speedup rests on: with skipping, the
scheduler issues a tap every cycle, with no bubble between groups, blocks or channels."""

from __future__ import annotations

import math
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from pesto.sim.build import sim_params


class TB:
    def __init__(self, dut, chans, entries, wgt, release_delay):
        self.dut = dut
        self.p = sim_params()
        self.chans, self.entries, self.wgt = chans, entries, wgt
        self.release_delay = release_delay
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        cocotb.start_soon(self._rams())
        self.items = []   # (cycle, fields)
        self.codes = []   # (cycle, codes)
        cocotb.start_soon(self._monitor())

    async def _rams(self):
        d = self.dut
        wa = int(self.p["WGT_ADDR_WIDTH"])
        while True:
            await RisingEdge(d.clk)
            a = d.chan_addr.value
            if a.is_resolvable and int(a) < len(self.chans):
                ch, first, count = self.chans[int(a)]
                d.chan_channel.value, d.chan_first.value, d.chan_count.value = ch, first, count
            a = d.list_addr.value
            if a.is_resolvable and int(a) < len(self.entries):
                off, base, nz = self.entries[int(a)]
                d.list_data.value = (off << (wa + 1)) | (base << 1) | nz
            a = d.wgt_addr.value
            if a.is_resolvable:
                d.wgt_data.value = self.wgt[int(a) % len(self.wgt)]

    async def _monitor(self):
        d = self.dut
        cycle, pending = 0, []
        d.bank_release.value = 0
        while True:
            await RisingEdge(d.clk)
            cycle += 1
            d.bank_release.value = int(bool(pending) and pending[0] == cycle)
            if pending and pending[0] == cycle:
                pending.pop(0)
            if str(d.bc_valid.value) == "1":
                f = {k: int(getattr(d, f"bc_{k}").value) for k in
                     ("first", "last", "blk0", "ky", "kx", "channel", "count")}
                f["off"] = d.bc_off.value.to_signed()
                self.items.append((cycle, f))
                if f["last"]:
                    pending.append(cycle + self.release_delay)
            self.codes.append(int(d.bc_codes.value) if d.bc_codes.value.is_resolvable else None)


async def run_case(dut, seed, k, pixels, in_w, channels, groups, release_delay=12):
    p = sim_params()
    lanes, num_pe = int(p["LANES"]), int(p["NUM_PE"])
    tpw = 32 // lanes
    rng = random.Random(seed)
    chans, entries = [], []
    for c in range(channels):
        count = rng.randint(1, groups)
        chans.append((rng.randint(0, 200), len(entries), count))
        for _ in range(count):
            entries.append((rng.randint(0, 500), rng.randint(0, 300), rng.randint(0, 1)))
    wgt = [rng.getrandbits(64) for _ in range(1024)]
    tb = TB(dut, chans, entries, wgt, release_delay)
    d = dut
    d.start.value = 0
    d.rst.value = 1
    await ClockCycles(d.clk, 3)
    d.rst.value = 0
    d.active_channels.value = channels
    d.kernel.value = k
    d.taps.value = k * k
    d.pixels.value = pixels
    d.in_w.value = in_w
    await ClockCycles(d.clk, 3)
    d.start.value = 1
    await RisingEdge(d.clk)
    d.start.value = 0
    total = sum(math.ceil(pixels / num_pe) * count * k * k for _, _, count in chans)
    for _ in range(4 * total + 200):
        await RisingEdge(d.clk)
        if len(tb.items) == total and str(d.busy.value) == "0":
            break
    await ClockCycles(d.clk, 5)
    assert len(tb.items) == total
    exp = []
    for ch, first, count in chans:
        for b in range(math.ceil(pixels / num_pe)):
            for j in range(count):
                off, base, nz = entries[first + j]
                for t in range(k * k):
                    ky, kx = divmod(t, k)
                    word = wgt[base + t // tpw]
                    codes = (word >> (2 * lanes * (t % tpw))) & ((1 << (2 * lanes)) - 1) if nz else 0
                    exp.append(({"first": int(j == 0 and t == 0), "last": int(j == count - 1 and t == k * k - 1),
                                 "blk0": int(b == 0), "ky": ky, "kx": kx, "channel": ch,
                                 "count": min(num_pe, pixels - b * num_pe), "off": off + ky * in_w + kx}, codes))
    for (cycle, got), (want, codes) in zip(tb.items, exp):
        assert got == want, (got, want)
        assert tb.codes[cycle + 1] == codes, "codes arrive two cycles after their tap"
    groups_issued = sum(count for _, _, count in chans)
    assert int(d.groups_issued.value) == groups_issued
    return tb.items[-1][0] - tb.items[0][0] + 1 - total  # bubbles


@cocotb.test()
async def test_sched_no_bubbles(dut):
    """3x3 taps, banks released in time: one tap every cycle from the first to the last."""
    bubbles = await run_case(dut, 1, k=3, pixels=37, in_w=11, channels=6, groups=4)
    assert bubbles == 0, bubbles


@cocotb.test()
async def test_sched_1x1(dut):
    """1x1 taps: a block can be as short as one cycle; the bank credits pace the blocks."""
    await run_case(dut, 2, k=1, pixels=20, in_w=5, channels=5, groups=3, release_delay=6)


@cocotb.test()
async def test_sched_slow_drain(dut):
    """A drain slower than the blocks: the last tap of a block waits for a free bank."""
    bubbles = await run_case(dut, 3, k=3, pixels=16, in_w=4, channels=3, groups=1, release_delay=40)
    assert bubbles > 0
