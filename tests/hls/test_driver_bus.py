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


def test_a_frozen_c_simulation_is_a_hardware_error_within_the_deadline(csim):
    import os
    import signal
    import time
    bus = CSimBus(csim.binary, timeout_s=2)
    try:
        identity_probe(bus)
        os.killpg(bus.proc.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        with pytest.raises(HardwareError, match=r"did not answer within 2 s while reading register 0x30.*stopped"):
            bus.read(REGMAP.offset("STATUS"))
        assert time.monotonic() - t0 < 10 and bus.proc.poll() is not None
        with pytest.raises(HardwareError, match="not running any more"):
            bus.read(REGMAP.offset("STATUS"))
    finally:
        bus.close()


def test_threads_sharing_the_c_simulation_take_turns(csim):
    """Two threads run layers on one engine at once: each run holds the bus for its whole
    register-and-stream sequence (driver.protocol.bus_lock), so both stay bit-exact."""
    import threading
    results, errors = {}, []
    cases = {"a": table7_case("stage1", seed=3), "b": table7_case("stage2", seed=4)}
    with CSimBus(csim.binary) as bus:
        hw = identity_probe(bus)

        def worker(name):
            try:
                layer, x = cases[name]
                for _ in range(2):
                    results.setdefault(name, []).append(run_layer(bus, layer, x, hw)[0])
            except Exception as e:   # noqa: BLE001 -- reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(n,)) for n in cases]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    assert not errors, errors
    for name, (layer, x) in cases.items():
        for y in results[name]:
            np.testing.assert_array_equal(y, run_conv(x, layer))
