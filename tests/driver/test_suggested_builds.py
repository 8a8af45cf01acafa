"""Every build parameter the driver's messages suggest builds and runs.

``check_fits`` names, for a layer too big for one run, the parameter values that would hold it;
here those very values are parsed out of the message, the RTL is built with them, and the layer
runs in one pass bit for bit the reference. Enlarged buffers once broke the Verilator build (a
24-bit beat counter in pesto_engine whose zero-extension went negative once
LOG2_MAX_N + LOG2_WGT_DEPTH > 22); Verilator's elaboration of the suggested builds is checked
by lint (seconds each), one full build runs in Icarus; the same in Verilator (about two minutes
of C++) runs with PESTO_FULL_BUILDS=1, outside CI.
"""

from __future__ import annotations

import os
import re
import subprocess

import numpy as np
import pytest

from pesto.driver import check_fits, check_identity, run_layer
from pesto.errors import UnsupportedLayerError
from pesto.hwspec import HwConfig
from pesto.reference import run_conv
from pesto.sim.build import RTL_DIR, rtl_sources, verilator_root
from pesto.sim.measure import make_layer, random_input

pytestmark = [pytest.mark.sim]

DEFAULT = HwConfig(16, 8, 3, 11, 11, 8, 11)   # the RTL's default build (hw/rtl/pesto_accel.v)
RTL_PARAMS = {"log2_act_depth": "LOG2_ACT_DEPTH", "log2_wgt_depth": "LOG2_WGT_DEPTH",
              "log2_max_n": "LOG2_MAX_N", "log2_max_pix": "LOG2_MAX_PIX"}


def suggested(layer, h, w, hw=DEFAULT) -> dict[str, int]:
    """The build parameters check_fits's message says would hold ``layer`` on an h x w input."""
    with pytest.raises(UnsupportedLayerError) as e:
        check_fits(layer, h, w, hw)
    params = {k: int(v) for k, v in re.findall(r"\(([A-Z0-9_]+)=(\d+) would hold it\)", str(e.value))}
    assert params, str(e.value)
    return params


# (layer, input h, w): over every limit of the default build, one by one and together
BIG = [
    (make_layer(512, 16, 3, 16, group_sparsity=0.0, seed=1, name="channels_and_weights"), 2, 2),
    (make_layer(2, 16, 3, 16, nnz_groups=1, seed=2, name="activations_and_pixels"), 46, 46),
    (make_layer(512, 512, 3, 16, group_sparsity=0.0, seed=3, name="resnet18_layer4"), 2, 2),
]


@pytest.mark.parametrize("layer,h,w", BIG, ids=[b[0].name for b in BIG])
def test_suggested_builds_elaborate_in_verilator(layer, h, w):
    params = suggested(layer, h, w)
    verilator = verilator_root() / "bin" / "verilator"
    cmd = [str(verilator), "--lint-only", "-Wall", f"-I{RTL_DIR}", "--top-module", "pesto_accel",
           *[f"-G{k}={v}" for k, v in params.items()], *map(str, rtl_sources())]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0 and "%Warning" not in r.stderr and "%Error" not in r.stderr, (params, r.stderr[-2000:])


def _run_in_one_pass(simulator: str):
    from pesto.sim.server import SimAccelerator
    params = {}
    for layer, h, w in BIG[:2]:
        for k, v in suggested(layer, h, w).items():
            params[k] = max(params.get(k, 0), v)
    with SimAccelerator(simulator, parameters=params, timeout_s=1200) as bus:
        hw = check_identity(bus)
        assert {RTL_PARAMS[f]: getattr(hw, f) for f in RTL_PARAMS if RTL_PARAMS[f] in params} == params
        for layer, h, w in BIG[:2]:
            check_fits(layer, h, w, hw)   # the suggested build holds it in one run
            x = random_input(layer.in_channels, h, w, seed=7)
            y, stats = run_layer(bus, layer, x, hw, timeout_s=600)
            assert np.array_equal(y, run_conv(x, layer)), layer.name
            assert stats.groups_issued == layer.nnz_groups


def test_suggested_build_runs_in_icarus():
    _run_in_one_pass("icarus")


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("PESTO_FULL_BUILDS"), reason="a full Verilator build of the enlarged "
                    "buffers (minutes): set PESTO_FULL_BUILDS=1")
def test_suggested_build_runs_in_verilator():
    _run_in_one_pass("verilator")
