"""The driver drives the HLS engine exactly as it drives the RTL: pesto.driver's own
check_identity / run_layer / BusBackend / Accelerator over the HLS C simulation as a Bus
(the compiled testbench in --serve mode, with the Vitis ap_ctrl_hs adapter modelled)."""

from __future__ import annotations

import numpy as np
import pytest

from pesto.driver.backends import BusBackend, RefBackend
from pesto.driver.protocol import check_identity, run_layer
from pesto.errors import HardwareError
from pesto.hls.bus import CSimBus, identity_probe
from pesto.hwspec import REGMAP
from pesto.reference import run_conv
from pesto.sim.measure import make_layer, random_input, table7_case

pytestmark = pytest.mark.xdist_group("hls")


def test_identity_needs_the_probe_on_a_fresh_hls_engine(csim):
    with CSimBus(csim.binary) as bus:
        with pytest.raises(HardwareError, match="ID register reads 0x00000000"):
            check_identity(bus)          # HLS output registers hold nothing before a run
        assert identity_probe(bus) == csim.hw
        assert check_identity(bus) == csim.hw
        assert REGMAP["STATUS"].field(bus.read(REGMAP.offset("STATUS")), "ERR_CODE") == REGMAP.error_codes["CONFIG"]
        assert bus.last_unread == 0      # the probe's beat was dropped through TLAST


def test_run_layer_bit_exact_reuse_and_errors(csim):
    with CSimBus(csim.binary) as bus:
        hw = identity_probe(bus)
        with pytest.raises(HardwareError, match="CONFIG"):   # nothing loaded yet
            run_layer(bus, *table7_case("stage1"), hw, load_weights=False)
        layer, x = table7_case("stage2")
        y, stats = run_layer(bus, layer, x, hw, skip=True)
        np.testing.assert_array_equal(y, run_conv(x, layer))
        assert stats.groups_issued == 33 and stats.cycles > stats.compute_cycles > 0
        x2 = random_input(32, 16, 16, seed=9)
        y2, dense = run_layer(bus, layer, x2, hw, skip=False, load_weights=False)   # weights reused
        np.testing.assert_array_equal(y2, run_conv(x2, layer))
        assert dense.groups_issued == 64 and dense.compute_cycles > stats.compute_cycles
        assert bus.read(REGMAP.offset("CTRL")) & 0b110 == 0b100   # AP_DONE cleared by the driver's read, idle


def test_bus_backend_batch(csim):
    """BusBackend (what the sim and pynq backends are) on the HLS engine: a batch with weights
    streamed once and reused, against the ref backend."""
    with CSimBus(csim.binary) as bus:
        identity_probe(bus)
        backend = BusBackend(bus, "hls-csim")
        layer = make_layer(24, 40, 3, 16, group_sparsity=0.5, stride=2, seed=4, name="batch")
        x = np.stack([random_input(40, 11, 9, seed=s) for s in range(3)])
        y, stats = backend.conv(x, layer)
        ref, _ = RefBackend().conv(x, layer)
        np.testing.assert_array_equal(y, ref)
        assert len(stats) == 3 and len({s.groups_issued for s in stats}) == 1
