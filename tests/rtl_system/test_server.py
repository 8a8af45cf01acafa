"""The simulation server itself, on a foreign AXI peripheral (tests/rtl_system/rtl/foreign_ip.v):
identity refusal, register and stream round trips under idle/backpressure, and every way a
transfer can fail turning into a HardwareError instead of a hang."""

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from pesto.driver.protocol import check_identity
from pesto.errors import ConfigError, HardwareError

pytestmark = [pytest.mark.sim, pytest.mark.xdist_group("rtl_system_foreign")]

FOREIGN = [Path(__file__).parent / "rtl" / "foreign_ip.v"]


@pytest.fixture(scope="module")
def foreign():
    from pesto.sim.server import SimAccelerator
    with SimAccelerator("icarus", toplevel="foreign_ip", sources=FOREIGN, timeout_s=120) as bus:
        yield bus


def words(n, seed=0):
    return np.random.default_rng(seed).integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def test_foreign_bitstream_is_refused(foreign):
    with pytest.raises(HardwareError, match="not a pesto accelerator"):
        check_identity(foreign)


def test_register_round_trip(foreign):
    for offset, value in ((0x58, 0xDEADBEEF), (0x5C, 0), (0x98, 0x12345678)):
        foreign.write(offset, value)
    assert foreign.read(0x58) == 0xDEADBEEF
    assert foreign.read(0x5C) == 0
    assert foreign.read(0x98) == 0x12345678


@pytest.mark.parametrize("idle,backpressure", [(0.0, 0.0), (0.4, 0.6)])
def test_stream_round_trip(foreign, idle, backpressure):
    foreign.set_noise(idle, backpressure, seed=7)
    try:
        w = words(700, seed=1)
        before = foreign.now()
        out = foreign.transfer(w, 700, timeout_s=60)
        assert out.dtype == np.uint64 and np.array_equal(out, w)
        spent = foreign.now() - before
        # the loopback moves one beat per cycle unless the noise stalls it
        assert (spent < 760) if idle == backpressure == 0 else (spent > 1000)
    finally:
        foreign.set_noise()


def test_wrong_output_length_is_an_error(foreign):
    with pytest.raises(HardwareError, match="after 64 words, expected 63"):
        foreign.transfer(words(64), 63, timeout_s=30)
    assert np.array_equal(foreign.transfer(words(5), 5, timeout_s=30), words(5))  # still serving


def test_cycle_limit_then_reset_recovers(foreign):
    with pytest.raises(HardwareError, match=r"no complete output stream .* cycles \(limit 100\)"):
        foreign.transfer(words(2000), 2000, timeout_s=60, max_cycles=100)
    foreign.reset()
    assert np.array_equal(foreign.transfer(words(9, 3), 9, timeout_s=30), words(9, 3))


def test_wall_clock_limit(foreign):
    t0 = time.monotonic()
    with pytest.raises(HardwareError, match="s of wall time"):
        foreign.transfer(words(200_000), 200_000, timeout_s=0.5)
    assert time.monotonic() - t0 < 20
    foreign.reset()


def test_bad_options_are_config_errors():
    from pesto.sim.server import SimAccelerator
    with pytest.raises(ConfigError, match="simulator"):
        SimAccelerator("modelsim")
    with pytest.raises(ConfigError, match="backpressure"):
        SimAccelerator("icarus", backpressure=1.5)


def test_simulator_death_is_reported_with_its_log():
    from pesto.sim.server import SimAccelerator
    bus = SimAccelerator("icarus", toplevel="foreign_ip", sources=FOREIGN, timeout_s=120).open()
    try:
        os.killpg(bus._proc.pid, signal.SIGKILL)  # the process group this test started
        with pytest.raises(HardwareError, match=r"died .* log .*sim\.log"):
            bus.read(0x10)
        with pytest.raises(HardwareError, match="not running any more"):
            bus.read(0x10)
    finally:
        bus.close()


def test_close_ends_the_simulator():
    from pesto.sim.server import SimAccelerator
    with SimAccelerator("icarus", toplevel="foreign_ip", sources=FOREIGN, timeout_s=120) as bus:
        proc = bus._proc
        bus.write(0x58, 1)
    assert proc.poll() == 0
    with pytest.raises(HardwareError, match="not running"):
        bus.read(0x58)


def test_build_failure_is_a_hardware_error(tmp_path):
    from pesto.sim.server import SimAccelerator
    broken = tmp_path / "broken_ip.v"
    broken.write_text("module broken_ip(input wire aclk); this is not verilog; endmodule\n")
    with pytest.raises(HardwareError, match="building broken_ip .*build.log"):
        SimAccelerator("icarus", toplevel="broken_ip", sources=[broken], timeout_s=60).open()
