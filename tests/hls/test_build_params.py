"""Other build parameters than the default: the templates are generic in LANES (4..32: taps per
code word, beats per activation word) and NUM_PE (copies, pixel blocks); each build is compiled
and run bit-exact on a few random layers, with skipping on and off."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pesto.hls import HLS_DEFAULT, compile_tb, layer_case, render_project, run_tb, write_vectors
from pesto.hwspec import HwConfig, unpack_outputs
from pesto.reference import run_conv
from pesto.sim.measure import make_layer, random_input

pytestmark = pytest.mark.xdist_group("hls-params")


@pytest.mark.parametrize("lanes,num_pe", [(4, 4), (32, 8)])
def test_other_builds_bit_exact(lanes, num_pe, tmp_path):
    hw = replace(HLS_DEFAULT, lanes=lanes, num_pe=num_pe, log2_act_depth=11, log2_max_pix=10)
    binary = compile_tb(render_project(tmp_path / "prj", [], hw))
    pairs = [(make_layer(9, 20, 3, 16, group_sparsity=0.4, seed=1, name="a"), random_input(20, 7, 6, seed=2)),
             (make_layer(6, 40, 1, 8, group_sparsity=0.5, stride=2, padding=0, seed=3, name="b"),
              random_input(40, 9, 9, seed=4)),
             (make_layer(5, 12, 3, 4, group_sparsity=0.3, stride=2, seed=5, name="c"), random_input(12, 5, 8, seed=6))]
    cases = [layer_case(layer, x, lanes, skip=s) for layer, x in pairs for s in (True, False)]
    write_vectors(tmp_path / "v.vec", cases)
    run = run_tb(binary, [tmp_path / "v.vec"], dump_dir=tmp_path / "dump")
    assert run.failed == 0, run.output
    assert HwConfig.from_registers(run.hw["hwcfg0"], run.hw["hwcfg1"]) == hw
    for c, (layer, x) in zip(cases, [p for p in pairs for _ in (0, 1)]):
        got = unpack_outputs(run.outputs(tmp_path / "dump", c.name), layer.out_channels, *c.meta["out_hw"])
        np.testing.assert_array_equal(got, run_conv(x, layer), err_msg=c.name)
