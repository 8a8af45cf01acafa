"""cocotb bench of pesto_accel in network mode (accelerator v2): programs made by
pesto.hwspec.program, outputs compared bit for bit with pesto.reference (the accelerated chain of
the network: from its first quantize to its last dequantize), through the AXI ports with random
idle cycles on the input stream and backpressure on the output stream.

Networks come from the environment when a test needs a big one (PESTO_NETWORK_NPZ: a saved
artifact and its chain inputs and outputs, made by the pytest side), else small ones are drawn
here (pesto.sim.networks).
"""

from __future__ import annotations

import os

import numpy as np

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from pesto.hwspec import REGMAP
from pesto.hwspec.program import compile_network
from pesto.sim.networks import chain_io, random_chain, random_images, random_subnets
from pesto_tb import TB

SEED = int(os.environ.get("PESTO_SEED", "7"))


async def new_tb(dut, noise: bool = True) -> TB:
    tb = TB(dut, seed=SEED)
    await tb.reset()
    await tb.hwcfg()
    if noise:
        tb.set_noise(idle=0.2, backpressure=0.3)
    return tb


def small_network(seed: int, size: int = 6, keep=None):
    art = random_chain(seed, size=size)
    if keep:
        art = random_subnets(art, keep=keep, seed=seed)
    return art


async def check_network(tb, art, images, subnet=None, skip=True, prog=None, tag=""):
    prog = prog or compile_network(art, tb.hw, dense=True)
    x, want = chain_io(art, images, subnet=subnet)
    y, st = await tb.run_network(prog, x, subnet=subnet, skip=skip)
    bad = np.argwhere(y != want)
    assert bad.size == 0, f"{tag}: {len(bad)} of {y.size} outputs differ, first {bad[:3].tolist()}"
    return st


@cocotb.test()
async def test_registers(dut):
    """HWCFG announces network mode and the memories; no program after reset; the network
    registers read back."""
    tb = await new_tb(dut, noise=False)
    assert tb.hw.network and tb.hw.caps & 2
    assert tb.hw.code_depth > 0 and tb.hw.param_depth > 0 and tb.hw.prog_depth > 0 and tb.hw.bank_depth > 0
    assert await tb.read("PROGRAM") == 0 and await tb.read("PROGRAM_SUM") == 0
    for name in ("SUBNET", "NUM_IMAGES", "STEP_SEL"):
        await tb.write(name, 5)
        assert await tb.read(name) == 5


@cocotb.test()
async def test_network(dut):
    """A random network with every glue variant, skip on and off, one image then a batch of two."""
    tb = await new_tb(dut)
    art = small_network(SEED)
    prog = compile_network(art, tb.hw, dense=True)
    await tb.load_program(prog)
    info = await tb.read("PROGRAM")
    assert REGMAP["PROGRAM"].field(info, "VALID") == 1 and REGMAP["PROGRAM"].field(info, "STEPS") == len(prog.steps)
    assert await tb.read("PROGRAM_SUM") == prog.checksum
    images = random_images(art, 2, SEED)
    st_skip = await check_network(tb, art, images[:1], prog=prog, tag="skip")
    st_dense = await check_network(tb, art, images[:1], prog=prog, skip=False, tag="dense")
    assert st_skip.groups_issued < st_dense.groups_issued
    assert st_skip.groups_issued == sum(s.cycles(0, True)["entries"] for s in prog.conv_steps)
    st2 = await check_network(tb, art, images, prog=prog, tag="batch")
    assert st2.groups_issued == 2 * st_skip.groups_issued
    # the per-step counters of the last image
    rows = await tb.step_counters(len(prog.steps))
    for (cycles, issue), step in zip(rows, prog.steps):
        assert cycles > 0, step.name
        if step.op == "conv":
            assert issue >= step.blocks * step.cycles(0, True)["entries"] > 0 or step.cycles(0, True)["entries"] == 0


@cocotb.test()
async def test_subnets(dut):
    """Every sub-net of a three-mask artifact, switching between images without a reload."""
    tb = await new_tb(dut)
    art = small_network(SEED + 1, keep=(1.0, 0.6, 0.3))
    prog = compile_network(art, tb.hw, dense=False)
    await tb.load_program(prog)
    images = random_images(art, 3, SEED)
    issued = []
    for k in (2, 0, 1, 2):
        st = await check_network(tb, art, images[k:k + 1], subnet=k, prog=prog, tag=f"sub-net {k}")
        issued.append(st.groups_issued)
    assert issued[1] > issued[2] > issued[0] == issued[3]


@cocotb.test()
async def test_errors(dut):
    """Each refusal is in STATUS at once and a failed run ends with one zero word: no program,
    a sub-net out of range, no dense schedule, short and long streams, a bad program; the next
    run works."""
    tb = await new_tb(dut)
    art = small_network(SEED + 2, size=5)
    prog = compile_network(art, tb.hw, dense=False)
    x, want = chain_io(art, random_images(art, 1, SEED))
    await tb.run_network(prog, x, expect="NO_PROGRAM")
    words = prog.words()
    bad = words.copy()
    bad[1] ^= np.uint64(1)
    await tb.load_program(bad, expect="BAD_PROGRAM")
    await tb.load_program(words[:-3], expect="STREAM_SHORT")
    await tb.load_program(prog)
    await tb.run_network(prog, x, subnet=1, expect="BAD_SUBNET")
    await tb.run_network(prog, x, subnet=0, skip=False, expect="NO_DENSE")
    stream = prog.input_words(x)
    await tb.run_network(prog, x, words=stream[:-1], expect="STREAM_SHORT")
    await tb.run_network(prog, x, words=np.concatenate([stream, stream[:3]]), expect="STREAM_LONG")
    y, _ = await tb.run_network(prog, x)
    assert np.array_equal(y, want)


@cocotb.test()
async def test_start_while_busy_and_reset_mid_network(dut):
    """A start during a network run is ignored and flagged; aresetn in the middle of a run
    returns the engine to idle and drops the program (the next run reports NO_PROGRAM)."""
    tb = await new_tb(dut)
    art = small_network(SEED + 3, size=5)
    prog = compile_network(art, tb.hw)
    x, want = chain_io(art, random_images(art, 1, SEED))
    await tb.load_program(prog)
    await tb.write("NUM_IMAGES", 1)
    await tb.write("MODE", REGMAP["MODE"].encode(NETWORK=1, SKIP_EN=1))
    await tb.start()
    send = cocotb.start_soon(tb.send(prog.input_words(x)))
    await ClockCycles(dut.aclk, 50)
    await tb.write("CTRL", 1)
    status = await tb.read("STATUS")
    assert REGMAP["STATUS"].field(status, "START_IGNORED") == 1
    out = await tb.recv_words()
    await send
    await tb.wait_done()
    assert np.array_equal(prog.unpack_output(out)[0], want)
    # reset in the middle of the compute
    await tb.write("MODE", REGMAP["MODE"].encode(NETWORK=1, SKIP_EN=1))
    await tb.start()
    send = cocotb.start_soon(tb.send(prog.input_words(x)))
    await ClockCycles(dut.aclk, 400)
    await tb.reset()
    tb.source.clear()
    send.cancel()
    for _ in range(5):
        await RisingEdge(dut.aclk)
    assert REGMAP["CTRL"].field(await tb.read("CTRL"), "AP_IDLE") == 1
    await tb.run_network(prog, x, expect="NO_PROGRAM")
    await tb.load_program(prog)
    y, _ = await tb.run_network(prog, x)
    assert np.array_equal(y, want)


@cocotb.test()
async def test_saved_network(dut):
    """A network from the pytest side (PESTO_NETWORK_NPZ): every sub-net it lists, skip and dense."""
    path = os.environ.get("PESTO_NETWORK_NPZ")
    if not path:
        return
    from pesto import artifact as A
    data = np.load(path, allow_pickle=False)
    art = A.from_bytes(data["artifact"].tobytes())
    tb = await new_tb(dut, noise=bool(int(data["noise"])))
    prog = compile_network(art, tb.hw, dense=bool(int(data["dense"])))
    await tb.load_program(prog)
    for case in range(int(data["cases"])):
        k, skip = int(data[f"subnet{case}"]), bool(int(data[f"skip{case}"]))
        y, st = await tb.run_network(prog, data[f"x{case}"], subnet=k, skip=skip)
        want = data[f"y{case}"]
        bad = np.argwhere(y != want)
        assert bad.size == 0, f"case {case} (sub-net {k}, skip {skip}): {len(bad)} outputs differ, first {bad[:3].tolist()}"
        dut._log.info(f"case {case}: sub-net {k} skip {skip}: {st.cycles} cycles, {st.groups_issued} groups")
