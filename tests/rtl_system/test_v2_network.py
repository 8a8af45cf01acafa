"""Accelerator v2 (top pesto_accel_v2) on the fast C++ harness (Verilator, random X's per seed):
network mode on the embedded ResNet-20 with real Fashion-MNIST images and on a 32x32x3
ResNet-20, sub-nets switched between images and within a batch, refusals reported at once, and
layer mode as the very first run after reset (the run an unreset error flag once spoiled)."""

import threading

import numpy as np
import pytest

from pesto.driver import Accelerator
from pesto.driver.protocol import connect, load_network, run_layer, run_network
from pesto.errors import ConfigError, HardwareError
from pesto.hwspec.program import compile_network
from pesto.reference import network
from pesto.reference.layer import run_conv
from pesto.sim import open_sim
from pesto.sim.build import V2_TOP
from pesto.sim.networks import chain_io, random_images, random_subnets, resnet_artifact

pytestmark = [pytest.mark.sim, pytest.mark.xdist_group("rtl_v2_fast")]


@pytest.fixture(scope="module")
def v2():
    with open_sim("verilator", toplevel=V2_TOP, seed=3) as bus:
        yield bus, connect(bus)


def test_embedded_network_mode_bit_exact(v2, embedded):
    bus, hw = v2
    art, images = embedded
    assert hw.network
    with Accelerator(art, backend="sim", sim=bus) as acc:
        assert acc.mode == "network", acc.mode_reason
        assert f"sim ({V2_TOP}: 16 lanes, 4 PEs" in repr(acc)
        got = acc.execute(images[:6])
        steps = acc.step_counters()          # the last image's, as the engine counted them
        model = acc.program.cycles(acc.subnet)
        stats = acc.throughput_test(images[:4])
    np.testing.assert_array_equal(got, network.run(art, images[:6]))
    assert [s.name for s in steps] == [s.name for s in acc.program.steps]
    assert [s.issue_cycles for s in steps if s.op == "conv"] == [m["issue"] for m in model if m["op"] == "conv"]
    with Accelerator(art, backend="ref") as ref, pytest.raises(ConfigError, match="per-step counters"):
        ref.step_counters()
    # the whole network from one start: far fewer cycles than v1's layer-by-layer runs
    assert 20_000 < stats["hw_cycles_per_image"] < 150_000      # v1, layer by layer: ~230,000


def test_resnet20_32x32_skip_and_dense(v2):
    bus, hw = v2
    art = resnet_artifact(20, 32, 3, group_sparsity=0.25, seed=1)
    prog = compile_network(art, hw, dense=True)
    load_network(bus, prog, hw, timeout_s=300)
    x, want = chain_io(art, random_images(art, 2, seed=1))
    y_skip, s_skip = run_network(bus, prog, x, hw, skip=True, timeout_s=300)
    y_dense, s_dense = run_network(bus, prog, x, hw, skip=False, timeout_s=300)
    np.testing.assert_array_equal(y_skip, want)
    np.testing.assert_array_equal(y_dense, want)
    # 25 % of the groups skipped: the conv steps dominate, so the whole run is ~1.3x faster
    assert 1.2 < s_dense.cycles / s_skip.cycles < 1.34


def test_subnets_switched_between_images_and_mid_batch(v2, embedded):
    bus, hw = v2
    base, images = embedded
    art = random_subnets(base, keep=(0.9, 0.5, 0.2), seed=2)
    want = [network.run(network.select(art, k), images[:3]) for k in range(3)]
    with Accelerator(art, backend="sim", sim=bus) as acc:
        assert acc.mode == "network", acc.mode_reason
        cycles = []
        for k in (2, 0, 1, 2):
            acc.select_subnet(k)
            np.testing.assert_array_equal(acc.execute(images[:1]), want[k][:1])
            cycles.append(sum(r.cycles for r in acc.records.values()))
        got = acc.execute(images[:3], subnet=[1, 2, 0])
        for i, k in enumerate((1, 2, 0)):
            np.testing.assert_array_equal(got[i], want[k][i])
        with pytest.raises(ConfigError, match="out of range"):
            acc.select_subnet(3)
    # fewer issued groups, fewer cycles; the same sub-net costs the same after any switch
    assert cycles[0] == cycles[3] < cycles[2] < cycles[1]


def test_refusals_reported_at_once(v2, embedded):
    bus, hw = v2
    art, images = embedded
    prog = compile_network(art, hw)
    load_network(bus, prog, hw, timeout_s=300)
    x, _ = chain_io(art, images[:1])
    with pytest.raises(HardwareError, match="BAD_SUBNET"):
        bus.write(0xB0, 5)                       # SUBNET beyond the program's one sub-net
        run_network(bus, prog, x, hw, timeout_s=30)
    with pytest.raises(HardwareError, match="NO_DENSE"):
        run_network(bus, prog, x, hw, subnet=0, skip=False, timeout_s=30)
    y, _ = run_network(bus, prog, x, hw, subnet=0, timeout_s=30)   # and the engine runs on
    np.testing.assert_array_equal(y, chain_io(art, images[:1])[1])


def test_threads_switching_subnets_take_turns(v2, embedded):
    """Two threads share one engine and run different sub-nets through the protocol functions
    themselves: run_network holds the bus for the switch, the start and the streams, so no
    thread's image runs under the other's SUBNET."""
    bus, hw = v2
    base, images = embedded
    art = random_subnets(base, keep=(0.9, 0.3), seed=4)
    prog = compile_network(art, hw)
    load_network(bus, prog, hw, timeout_s=300)
    io = [chain_io(network.select(art, k), images[:1]) for k in range(2)]   # (chain input, output)
    want = [y for _, y in io]
    assert not np.array_equal(want[0], want[1])
    errors = []

    def worker(k):
        try:
            for _ in range(6):
                y, _ = run_network(bus, prog, io[k][0], hw, subnet=k, timeout_s=120)
                np.testing.assert_array_equal(y, want[k])
        except Exception as e:   # noqa: BLE001 -- collected and reported below
            errors.append(f"sub-net {k}: {e!r}"[:300])

    threads = [threading.Thread(target=worker, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and not any(t.is_alive() for t in threads), errors


@pytest.mark.parametrize("seed", [1, 2, 5, 7])
def test_layer_mode_first_run_after_reset(embedded, seed):
    art, images = embedded
    layer = art.layers[0]
    x = np.random.default_rng(seed).integers(-500, 500, (layer.in_channels, 18, 18)).astype(np.int16)
    with open_sim("verilator", toplevel=V2_TOP, seed=seed) as bus:
        hw = connect(bus)
        y, _ = run_layer(bus, layer, x, hw)
    np.testing.assert_array_equal(y, run_conv(x[None], layer)[0])
