"""pesto.driver.tiling: a layer larger than the build, split into runs that each fit it.

Here every run goes through the driver's own fit check (the limits the engine enforces) and the
integer reference, so the tests check the decomposition itself: that every tile fits, and that
the stitched outputs equal the whole layer bit for bit, over random layers and builds. The RTL
runs the tiles in tests/driver/test_sim_backend.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pesto.driver import protocol, tiling
from pesto.errors import UnsupportedLayerError
from pesto.hwspec import HwConfig
from pesto.hwspec.protocol import words_per_group
from pesto.reference import run_conv
from pesto.sim.measure import make_layer, random_input


def run_checked(plan, x, hw):
    """The plan run on the reference, each pass refused unless the build could take it."""
    passes = []

    def run(sub, xin, load):
        protocol.check_fits(sub, xin.shape[1], xin.shape[2], hw)
        passes.append((sub, xin.shape, load))
        return run_conv(xin, sub), None

    y, _ = tiling.run_tiled(plan, x, run)
    return y, passes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 40), c=st.integers(1, 40), k=st.sampled_from([1, 3]), stride=st.sampled_from([1, 2]),
       cg=st.sampled_from([4, 8, 16]), gs=st.floats(0, 1), h=st.integers(3, 20), w=st.integers(3, 20),
       act=st.integers(5, 9), wgt=st.integers(4, 9), max_n=st.integers(1, 5), pix=st.integers(3, 8),
       seed=st.integers(0, 1000))
def test_tiles_fit_and_equal_the_whole_layer(n, c, k, stride, cg, gs, h, w, act, wgt, max_n, pix, seed):
    hw = HwConfig(lanes=16, num_pe=8, max_k=3, log2_act_depth=act, log2_wgt_depth=wgt, log2_max_n=max_n,
                  log2_max_pix=pix)
    layer = make_layer(n, c, k, cg, group_sparsity=gs, stride=stride, seed=seed)
    x = np.stack([random_input(c, h, w, seed=seed + i) for i in range(2)])
    plan = tiling.plan(layer, h, w, hw)
    if plan.on_host:   # only when one channel or one pixel alone exceeds the build
        g, wpg = -(-c // min(cg, 16)), words_per_group((k, k), 16)
        assert g * k * k > 1 << act or g * max(wpg, 1) > 1 << wgt, plan.host_reason
        return
    y, passes = run_checked(plan, x, hw)
    assert np.array_equal(y, run_conv(x, layer))
    assert len(passes) == 2 * plan.runs
    # weights cross the bus once per channel tile: the other images and spatial tiles reuse them
    assert sum(load for _, _, load in passes) == len(plan.channel_tiles)


def test_a_layer_that_fits_is_one_run():
    hw = HwConfig()
    layer = make_layer(16, 16, 3, 16, nnz_groups=9)
    plan = tiling.plan(layer, 8, 8, hw)
    assert plan.runs == 1 and not plan.tiled and tiling.sub_layer(layer, 0, 16) is layer


def test_output_channel_tiles():
    hw = HwConfig(16, 8, 3, 11, 11, 8, 11)           # the default build
    wide = make_layer(300, 16, 1, 16, nnz_groups=200)  # more channels than 2**LOG2_MAX_N
    assert tiling.plan(wide, 4, 4, hw).channel_tiles == [(0, 256), (256, 300)]
    deep = make_layer(64, 256, 3, 16, group_sparsity=0.0)  # 1024 groups x 5 words > 2048 weight words
    tiles = tiling.plan(deep, 4, 4, hw).channel_tiles
    assert len(tiles) == 3 and all((b - a) * 16 * 5 <= 2048 for a, b in tiles)


def test_spatial_tiles_with_halos():
    hw = HwConfig(16, 8, 3, 11, 11, 8, 11)
    layer = make_layer(16, 16, 3, 16, nnz_groups=9, stride=2)
    x = random_input(16, 65, 65, seed=3)[None]          # 4225 activation words > 2048
    plan = tiling.plan(layer, 65, 65, hw)
    assert plan.spatial and len(plan.channel_tiles) == 1
    y, passes = run_checked(plan, x, hw)
    assert np.array_equal(y, run_conv(x, layer))
    assert all(sub.padding == 0 for sub, _, _ in passes)  # the host padded once; the tiles carry halos


def test_what_cannot_be_tiled_goes_to_the_host_with_the_parameter_to_raise():
    hw = HwConfig(16, 8, 1, 11, 11, 8, 11)               # MAX_K = 1
    plan = tiling.plan(make_layer(8, 16, 3, 16, nnz_groups=4), 6, 6, hw)
    assert plan.on_host and "MAX_K=3" in plan.host_reason
    hw = HwConfig(16, 8, 3, 8, 11, 8, 11)                # 256 activation words
    plan = tiling.plan(make_layer(8, 512, 3, 16, nnz_groups=8), 6, 6, hw)  # one pixel reads 32 x 9 words
    assert plan.on_host and "LOG2_ACT_DEPTH to 9" in plan.host_reason
    with pytest.raises(UnsupportedLayerError, match="LOG2_WGT_DEPTH"):
        tiling.channel_tiles(make_layer(2, 16 * 420, 3, 16, group_sparsity=0.0), hw)  # 420 groups x 5 words


def test_check_fits_names_a_value_that_holds_the_layer():
    hw = HwConfig(16, 8, 3, 11, 11, 8, 11)
    with pytest.raises(UnsupportedLayerError, match=r"LOG2_WGT_DEPTH=13 would hold it.*splits such a layer"):
        protocol.check_fits(make_layer(64, 256, 3, 16, group_sparsity=0.0), 4, 4, hw)
