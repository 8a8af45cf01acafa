"""cocotb bench of pesto_accel, the whole accelerator through its AXI ports."""

from __future__ import annotations

import numpy as np

import cocotb

from pesto.reference.layer import run_conv
from pesto_tb import TB, random_input, random_layer


@cocotb.test()
async def test_smoke(dut):
    tb = TB(dut)
    await tb.reset()
    await tb.hwcfg()
    rng = np.random.default_rng(1)
    for k, s, p, skip in [(3, 1, 1, True), (3, 1, 1, False), (1, 1, 0, True), (3, 2, 1, True)]:
        layer = random_layer(rng, 8, 16, k=k, stride=s, pad=p, cg=tb.hw.lanes, density=0.5)
        x = random_input(rng, 16, 7, 6)
        y, st = await tb.run_layer(layer, x, skip=skip)
        ref = run_conv(x, layer)
        dut._log.info("k=%d s=%d skip=%d stats %s", k, s, skip, st)
        assert np.array_equal(y, ref), f"mismatch k={k} s={s}: {np.argwhere(y != ref)[:5]}"
