"""No unbounded wait: a frozen (not dead) simulator gives a HardwareError within the request
deadline, naming what was awaited; a simulator shared by threads serves each request whole and,
under driver.protocol.bus_lock, each run whole. On the RTL simulation server with a foreign
AXI peripheral (tests/rtl_system/rtl/foreign_ip.v, Icarus: quick to build)."""

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from pesto.driver.protocol import bus_lock
from pesto.errors import HardwareError

pytestmark = [pytest.mark.sim, pytest.mark.xdist_group("rtl_system_foreign")]

FOREIGN = [Path(__file__).parents[1] / "rtl_system" / "rtl" / "foreign_ip.v"]


def _open(**kw):
    from pesto.sim.server import SimAccelerator
    return SimAccelerator("icarus", toplevel="foreign_ip", sources=FOREIGN, timeout_s=300, **kw).open()


def test_a_frozen_simulator_is_a_hardware_error_within_the_deadline():
    bus = _open(request_timeout_s=3)
    try:
        bus.write(0x58, 7)
        assert bus.read(0x58) == 7
        os.killpg(bus._proc.pid, signal.SIGSTOP)      # frozen: alive, holding its socket, answering nothing
        t0 = time.monotonic()
        with pytest.raises(HardwareError, match=r"did not answer within 3 s while reading register 0x58 "
                                                r"\(frozen or overloaded\); it was stopped"):
            bus.read(0x58)
        assert time.monotonic() - t0 < 15
        assert bus._proc.poll() is not None            # the frozen simulator was killed, not left behind
        with pytest.raises(HardwareError, match="not running any more"):
            bus.read(0x58)
    finally:
        bus.close()


@pytest.fixture(scope="module")
def foreign():
    bus = _open()
    yield bus
    bus.close()


def test_threads_sharing_a_simulator_take_turns(foreign):
    """Each request is whole (no reply read by the wrong thread), and a sequence under bus_lock
    (here: write a register, read it back) is never interleaved with another thread's."""
    errors, regs = [], (0x58, 0x5C, 0x98)

    def worker(tid):
        try:
            for i in range(15):
                with bus_lock(foreign):
                    foreign.write(0x58, tid * 1000 + i)            # every thread uses the same register
                    got = foreign.read(0x58)
                assert got == tid * 1000 + i, (tid, i, got)
                foreign.write(regs[tid % 3], tid)                  # and plain requests without the lock
                foreign.read(regs[tid % 3])
        except Exception as e:   # noqa: BLE001 -- collected and reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and not any(t.is_alive() for t in threads), errors
