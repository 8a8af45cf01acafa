"""Dynamic inference in the driver (docs/dynamic.md) on the integer reference backend: network
mode and layer mode bit-exact with pesto.reference on every sub-net, switching between images
and inside a batch, subnets(), the latency policy, and every refusal naming its fix."""

from __future__ import annotations

import numpy as np
import pytest

from pesto.driver import Accelerator, RefBackend
from pesto.driver.backends import REF_BUILD
from pesto.errors import ConfigError, UnsupportedLayerError
from pesto.reference import network
from pesto.sim.networks import random_chain, random_images, random_subnets

pytestmark = pytest.mark.xdist_group("driver-sim")   # shares the session's exported artifact

ACCURACY = (91.0, 89.5, 84.0)


@pytest.fixture(scope="module")
def multi(art):
    """The small exported ResNet-20 as three sub-nets over its codes, with measured accuracy."""
    m = random_subnets(art, keep=(1.0, 0.7, 0.4), seed=3, names=["full", "mid", "fast"])
    for s, acc in zip(m.subnets, ACCURACY):
        s.meta["accuracy"] = {"top1_percent": acc, "images": 10000, "split": "test", "measured_by": "test"}
    return m


@pytest.fixture(scope="module")
def want(multi, fmnist):
    images = fmnist[0][:6]
    return images, [network.run(multi, images, subnet=k) for k in range(3)]


@pytest.mark.parametrize("mode", ["network", "layer"])
def test_every_subnet_bit_exact(multi, want, mode):
    images, logits = want
    acc = Accelerator(multi, backend="ref", mode=mode)
    assert acc.mode == mode
    for k, name in enumerate(["full", "mid", "fast"]):
        assert acc.select_subnet(name) == k
        assert np.array_equal(acc.execute(images), logits[k]), (mode, k)


@pytest.mark.parametrize("mode", ["network", "layer"])
def test_switch_between_images_and_mid_batch(multi, want, mode):
    images, logits = want
    acc = Accelerator(multi, backend="ref", mode=mode, subnet="fast")
    plan = [2, 0, 0, 1, 2, 2]                       # four switches inside one call
    got = acc.execute(images, subnet=plan)
    assert np.array_equal(got, np.stack([logits[k][i] for i, k in enumerate(plan)]))
    if mode == "network":                          # one network run per stretch of one sub-net
        assert acc.records["network"].calls == 4
    assert acc.subnet == 2                          # a per-call choice leaves the selection alone
    for i, k in enumerate(plan):                    # and one image at a time, selecting between them
        acc.select_subnet(k)
        assert np.array_equal(acc.execute(images[i:i + 1]), logits[k][i:i + 1])
    with pytest.raises(ConfigError, match="one per image"):
        acc.execute(images, subnet=[0, 1])
    with pytest.raises(ConfigError, match="trace each sub-net"):
        acc.execute(images, subnet=plan, trace=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_networks_with_every_glue_variant(seed):
    art = random_subnets(random_chain(seed), keep=(1.0, 0.5), seed=seed)
    images = random_images(art, 2, seed)
    acc = Accelerator(art, backend="ref")
    if seed == 0:   # a Cg-8 layer: sub-nets could split a 16-lane hardware group, so layer mode
        assert acc.mode == "layer" and "Cg=8 with 2 sub-nets" in acc.mode_reason
    else:
        assert acc.mode == "network"
    for k in range(2):
        assert np.array_equal(acc.execute(images, subnet=k), network.run(art, images, subnet=k))


def test_subnets_lists_sparsity_cycles_and_accuracy(multi):
    acc = Accelerator(multi, backend="ref", subnet=1)
    rows = acc.subnets()
    assert [r["name"] for r in rows] == ["full", "mid", "fast"] and [r["selected"] for r in rows] == [0, 1, 0]
    assert [r["accuracy_percent"] for r in rows] == list(ACCURACY)
    stats = multi.subnet_stats()
    for r, s in zip(rows, stats):
        assert r["group_sparsity"] == s["group_sparsity"] and r["issued_groups"] == s["nnz_groups"]
        assert r["cycles"] == sum(c["total"] for c in acc.program.cycles(r["index"]))   # the v2 model
        assert r["us"] == pytest.approx(r["cycles"] / 100) and r["model"].startswith("network")
    assert rows[0]["cycles"] > rows[1]["cycles"] > rows[2]["cycles"]
    assert rows[0]["group_sparsity"] < rows[1]["group_sparsity"] < rows[2]["group_sparsity"]
    layer = Accelerator(multi, backend="ref", mode="layer").subnets()
    assert [r["model"].startswith("layer") for r in layer] == [True] * 3
    assert layer[0]["cycles"] > layer[1]["cycles"] > layer[2]["cycles"]


def test_pick_subnet_most_accurate_within_budget(multi):
    acc = Accelerator(multi, backend="ref")
    us = [r["us"] for r in acc.subnets()]
    assert acc.pick_subnet(us[0] + 1) == 0          # everything fits: the most accurate
    assert acc.pick_subnet(us[1]) == 1              # the budget is exactly sub-net 1's latency
    assert acc.pick_subnet((us[1] + us[2]) / 2) == 2
    assert acc.subnet == 0                          # picking does not select
    with pytest.raises(ConfigError, match=r"no sub-net meets .* the fastest, 'fast'"):
        acc.pick_subnet(us[2] * 0.9)
    with pytest.raises(ConfigError, match="positive number of microseconds"):
        acc.pick_subnet(-5)


def test_pick_subnet_without_accuracy_prefers_more_groups(art):
    m = random_subnets(art, keep=(1.0, 0.5), seed=1)       # metadata holds no accuracy
    acc = Accelerator(m, backend="ref")
    rows = acc.subnets()
    assert [r["accuracy_percent"] for r in rows] == [None, None]
    assert acc.pick_subnet(rows[0]["us"] * 2) == 0 and acc.pick_subnet(rows[1]["us"]) == 1


def test_subnet_refusals_name_the_fix(multi, art, fmnist):
    acc = Accelerator(multi, backend="ref")
    with pytest.raises(ConfigError, match=r"sub-net index 3 out of range: .* 3 sub-net\(s\) \(0..2: full, mid, fast\)"):
        acc.select_subnet(3)
    with pytest.raises(ConfigError, match="no sub-net 'medium'; this artifact holds: 0 'full'"):
        acc.select_subnet("medium")
    with pytest.raises(ConfigError, match="out of range"):
        acc.execute(fmnist[0][:2], subnet=[0, 7])
    with pytest.raises(ConfigError, match="out of range"):
        Accelerator(multi, backend="ref", subnet=-1)
    single = Accelerator(art, backend="ref")
    assert single.select_subnet(0) == 0                     # the one network is sub-net 0
    with pytest.raises(ConfigError, match=r"no sub-nets; export a multi-sub-net artifact \(`pesto train --mode ast`"):
        single.select_subnet(1)
    with pytest.raises(ConfigError, match="no sub-nets"):
        single.select_subnet("s50")
    with pytest.raises(ConfigError, match="unknown mode"):
        Accelerator(multi, backend="ref", mode="fast")


class SmallBuild(RefBackend):
    """The reference backend compiling for a build with other limits (a smaller bitstream)."""

    def __init__(self, **limits):
        from dataclasses import replace
        self.build = replace(REF_BUILD, **limits)

    def network_build(self):
        return self.build


def test_a_build_for_fewer_subnets_is_refused(multi):
    with pytest.raises(UnsupportedLayerError, match=r"at most 2 sub-nets, the artifact 3: rebuild the bitstream"):
        Accelerator(multi, backend=SmallBuild(max_subnets=2))
    with pytest.raises(UnsupportedLayerError, match="at most 2 sub-nets"):
        Accelerator(multi, backend=SmallBuild(max_subnets=2), mode="network")


def test_a_network_too_large_for_the_build_runs_in_layer_mode(multi, want):
    images, logits = want
    acc = Accelerator(multi, backend=SmallBuild(code_depth=100), subnet=2)
    assert acc.mode == "layer" and "CODE_DEPTH" in acc.mode_reason and acc.program is None
    assert np.array_equal(acc.execute(images), logits[2])
    with pytest.raises(UnsupportedLayerError, match="CODE_DEPTH"):
        Accelerator(multi, backend=SmallBuild(code_depth=100), mode="network")


def test_dense_baseline_in_network_mode(multi, want):
    images, logits = want
    acc = Accelerator(multi, backend="ref", skip=False, subnet=1)
    assert acc.mode == "network" and acc.program.dense
    assert np.array_equal(acc.execute(images), logits[1])
    dense = acc.subnets()
    assert dense[0]["cycles"] == dense[2]["cycles"]          # without skipping every sub-net costs the same
    on = Accelerator(multi, backend="ref")
    assert not on.program.dense
    on.skip = False                                          # turning skipping off later recompiles
    assert np.array_equal(on.execute(images, subnet=1), logits[1]) and on.program.dense


def test_throughput_in_network_mode(multi, fmnist):
    acc = Accelerator(multi, backend="ref", subnet=2)
    r = acc.throughput_test(fmnist[0][:3])
    assert r["mode"] == "network" and r["subnet"] == 2 and r["images_per_s_from"] == "wall time"
    assert r["images_per_s"] == r["wall_images_per_s"] > 0
    assert 0 <= r["host_overhead_s"] <= r["runtime_s"] and r["accel_calls_s"] > 0
