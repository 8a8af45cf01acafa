"""The driver on the accelerator RTL (backend "sim"): bit for bit the reference backend, on
single layers and on the whole network; counters, weight reuse, layers larger than the build
(tiled, or on the host), profiling."""

from __future__ import annotations

import numpy as np
import pytest

from pesto.driver import Accelerator, BusBackend, HostFallbackWarning, RefBackend, run_layer
from pesto.errors import HardwareError, UnsupportedLayerError
from pesto.hwspec import layer_registers
from pesto.sim.measure import make_layer, random_input

pytestmark = [pytest.mark.sim, pytest.mark.xdist_group("driver-sim")]

# (N, C, kernel, stride, cg, group sparsity, H, W): the layer kinds a ResNet export produces
LAYERS = [
    (16, 16, 3, 1, 16, 0.45, 8, 8),     # stage-1 like
    (32, 16, 3, 2, 16, 0.5, 9, 8),      # down-sampling 3x3, odd input
    (32, 64, 1, 2, 32, 0.6, 6, 6),      # 1x1 stride-2 projection, Cg > lanes
    (8, 20, 3, 1, 8, 0.3, 5, 7),        # Cg < lanes, C not a multiple of Cg
    (8, 16, 3, 1, 16, 1.0, 4, 4),       # every group zero
]


@pytest.fixture(scope="module")
def hw_backend(sim):
    return BusBackend(sim, "sim", timeout_s=120)


@pytest.mark.parametrize("case", LAYERS, ids=lambda c: "n{}c{}k{}s{}cg{}gs{}_{}x{}".format(*c))
def test_layer_bit_exact_with_reference(hw_backend, case):
    n, c, k, stride, cg, gs, h, w = case
    layer = make_layer(n, c, k, cg, group_sparsity=gs, stride=stride, seed=n + c + k)
    x = np.stack([random_input(c, h, w, seed=s) for s in (1, 2)])  # two images: the second reuses the weights
    y, stats = hw_backend.conv(x, layer, skip=True)
    want, none = RefBackend().conv(x, layer)
    assert none is None and np.array_equal(y, want)
    nnz = layer_registers(layer, h, w, hw_backend.hw.lanes)["NNZ"]
    assert [s.groups_issued for s in stats] == [nnz, nnz]
    assert stats[1].cycles < stats[0].cycles or nnz == 0  # no weight packet the second time
    y_dense, dense = hw_backend.conv(x[:1], layer, skip=False)
    assert np.array_equal(y_dense, want[:1]) and dense[0].compute_cycles >= stats[0].compute_cycles


def test_network_bit_exact_with_reference(sim, art, fmnist):
    images = fmnist[0][:2]
    with Accelerator(art, backend="sim", sim=sim) as acc:
        logits, trace = acc.execute(images, trace=True)
        records = acc.records
    want, want_trace = Accelerator(art, backend="ref").execute(images, trace=True)
    assert np.array_equal(logits, want)
    for name, value in want_trace.items():  # every node: int16 tensors and host float layers alike
        assert np.array_equal(trace[name], value), name
    assert set(records) == {layer.name for layer in art.layers}
    assert all(len(r.stats) == 2 and r.cycles > 0 for r in records.values())


def test_throughput_and_profile(sim, art, fmnist):
    acc = Accelerator(art, backend="sim", sim=sim)
    tp = acc.throughput_test(fmnist[0][:1])
    assert tp["hw_cycles_per_image"] > 0 and tp["hw_us_per_image"] == pytest.approx(tp["hw_cycles_per_image"] / 100)
    assert 0 < tp["accel_calls_s"] < tp["runtime_s"]
    rows = acc.profile(fmnist[0][:1])
    assert [r["layer"] for r in rows] == [layer.name for layer in art.layers]
    for r in rows:
        assert r["groups_issued_skip"] == r["nnz_groups"] and r["groups_issued_dense"] == r["groups"]
        assert r["compute_cycles_skip"] <= r["compute_cycles_dense"]
        assert r["efficiency"] <= 1.05 or r["nnz_groups"] == 0


def test_layer_too_big_for_the_build_runs_tiled(sim, hw_backend):
    """More activation words and output pixels than the build holds: spatial tiles with halos;
    more output channels and weight words: output-channel tiles. Bit for bit the reference."""
    hw = hw_backend.hw
    cases = [(make_layer(16, 16, 3, 16, nnz_groups=9, seed=1), (2, 16, (1 << hw.log2_act_depth) // 32 + 1, 32)),
             (make_layer(16, 16, 3, 16, nnz_groups=7, stride=2, seed=2), (1, 16, 47, 47)),
             (make_layer((1 << hw.log2_max_n) + 44, 32, 3, 16, group_sparsity=0.3, seed=3), (2, 32, 3, 3))]
    for layer, shape in cases:
        x = np.stack([random_input(shape[1], shape[2], shape[3], seed=s) for s in range(shape[0])])
        plan = hw_backend.plan(layer, shape[2], shape[3])
        assert plan.tiled and not plan.on_host
        y, stats = hw_backend.conv(x, layer)
        assert np.array_equal(y, RefBackend().conv(x, layer)[0]), layer.name
        nnz = layer_registers(layer, shape[2], shape[3], hw.lanes)["NNZ"]
        assert len(stats) == shape[0] and stats[0].groups_issued == nnz * len(plan.spatial_tiles)
    # profiled as its tiles, skipping on and off, each checked against the reference
    from pesto.sim.measure import measure_tiled
    layer, shape = cases[1]
    row = measure_tiled(sim, layer, random_input(16, 47, 47, seed=5), hw)
    assert row["tiles"] > 1 and row["groups"] == 16 and row["nnz_groups"] == 7
    assert row["compute_cycles_skip"] < row["compute_cycles_dense"]
    # the engine itself agrees that the first one does not fit: forced through in one run, it
    # ends with ERR_CODE CONFIG (no output)
    layer, shape = cases[0]
    x = random_input(16, shape[2], shape[3], seed=1)
    limit, sim.max_cycles = sim.max_cycles, x.size // 4 + 20_000  # stream: x.size / 4 beats
    try:
        with pytest.raises(HardwareError, match="CONFIG"):
            run_layer(sim, layer, x, hw, timeout_s=30)
    finally:
        sim.max_cycles = limit
        sim.reset()


def test_dynamic_model_on_a_build_without_network_mode(sim, art, fmnist):
    """The RTL build here reports no network mode (HWCFG0.CAPS bit 0 clear): a K-sub-net
    artifact runs layer by layer, every sub-net bit-exact with the reference, the sub-net switched
    between images and inside one call; mode='network' is refused naming the fix."""
    from pesto.errors import ConfigError
    from pesto.reference import network
    from pesto.sim.networks import random_subnets
    multi = random_subnets(art, keep=(1.0, 0.6), seed=5, names=["full", "fast"])
    images = fmnist[0][:3]
    want = [network.run(multi, images, subnet=k) for k in range(2)]
    with Accelerator(multi, backend="sim", sim=sim) as acc:
        assert not acc.backend.hw.network and acc.mode == "layer" and "CAPS" in acc.mode_reason
        for k in (1, 0):
            acc.select_subnet(k)
            assert np.array_equal(acc.execute(images), want[k]), k
        plan = [1, 0, 1]
        assert np.array_equal(acc.execute(images, subnet=plan), np.stack([want[k][i] for i, k in enumerate(plan)]))
        issued = {r.name: [s.groups_issued for s in r.stats] for r in acc.records.values()}
        fast = multi.subnet(1)
        for layer in multi.subnet(0).layers:   # the engine issued each image's own sub-net's groups
            nnz = [int(layer.nnz_groups), int(fast.node(layer.name).layer.nnz_groups)]
            assert issued[layer.name] == [nnz[k] for k in plan], layer.name
        with pytest.raises(ConfigError, match="no sub-nets|out of range"):
            acc.select_subnet(2)
    with pytest.raises(UnsupportedLayerError, match="mode='layer'"):
        Accelerator(multi, backend="sim", sim=sim, mode="network")


def test_layer_no_tiling_fits_runs_on_the_host_with_a_warning(sim, hw_backend):
    hw = hw_backend.hw
    c = 16 * ((1 << hw.log2_wgt_depth) // 5 + 1)         # one output channel's codes > the weight buffer
    layer = make_layer(2, c, 3, 16, group_sparsity=0.0, seed=4)
    x = random_input(c, 3, 3, seed=4)[None]
    before = sim.now()
    with pytest.warns(HostFallbackWarning, match="LOG2_WGT_DEPTH"):
        y, stats = hw_backend.conv(x, layer)
    assert stats is None and np.array_equal(y, RefBackend().conv(x, layer)[0])
    assert sim.now() == before  # not one register written
