"""One simulator per pytest worker for the system tests: building and starting it is the slow
part, so every test of the xdist group "rtl_system" shares it (and runs on the same worker)."""

import pytest


@pytest.fixture(scope="session")
def accel():
    """The default (PYNQ-Z1) build of pesto_accel in Verilator, served over SimAccelerator."""
    from pesto.sim.server import SimAccelerator
    with SimAccelerator("verilator", timeout_s=900) as bus:
        yield bus


@pytest.fixture(scope="session")
def hw(accel):
    from pesto.driver.protocol import check_identity
    return check_identity(accel)
