"""RTL simulation: build the Verilog (build.py) and lend it to the driver as a ``Bus``, either
through the fast C++ harness (fast.py, Verilator, no Python per cycle) or through cocotb
(server.py, Verilator or Icarus: the protocol verification). Nothing here imports cocotb
until a cocotb build or run is asked for.

    from pesto.sim import open_sim
    bus = open_sim("verilator").open()        # the fast harness; "cocotb-verilator", "icarus"
"""

from __future__ import annotations

from ..errors import ConfigError
from .build import V2_TOP


def _fast():
    from .fast import FastSim
    return FastSim, ()


def _cocotb(simulator: str):
    def bus():
        from .server import SimAccelerator
        return SimAccelerator, (simulator,)
    return bus


# The simulated buses by name: what `Accelerator(backend="sim", simulator=...)`, `pesto demo
# --simulator` and `pesto bench --simulator` accept. Same register and stream protocol, same
# cycle timing; the fast harness is the default, the cocotb ones verify the protocol.
SIM_BUSES = {
    "verilator": _fast,                                # C++ harness over ctypes (pesto.sim.fast)
    "cocotb-verilator": _cocotb("verilator"),          # cocotb + Verilator (pesto.sim.server)
    "icarus": _cocotb("icarus"),                       # cocotb + Icarus (pesto.sim.server)
}
DEFAULT_SIM = "verilator"

# The simulated engines by name (`--engine`): v2 (hw/rtl/v2/, docs/accelerator-v2.md) runs whole
# networks from one start and switches sub-nets (network mode) and v1's layer mode besides; v1
# (hw/rtl/) runs layer by layer and is still the bitstreams' default build (v2 does not yet fit
# the xc7z020, docs/accelerator-v2.md). The demo and the dynamic benchmark simulate v2.
ENGINES = {"v2": V2_TOP, "v1": "pesto_accel"}
DEFAULT_ENGINE = "v2"


def engine_top(engine: str) -> str:
    """The RTL top of an engine name (ENGINES)."""
    try:
        return ENGINES[engine]
    except KeyError:
        raise ConfigError(f"engine {engine!r} unknown; use one of {', '.join(ENGINES)}") from None


def open_sim(simulator: str = DEFAULT_SIM, **options):
    """A simulated accelerator ``Bus`` by name (not yet opened: use ``with`` or ``.open()``).

    options go to FastSim or SimAccelerator (parameters, timeout_s, max_cycles, idle,
    backpressure, seed, sources, toplevel, ...)."""
    import inspect
    try:
        cls, args = SIM_BUSES[simulator]()
    except KeyError:
        raise ConfigError(f"simulator {simulator!r} unknown; use one of {', '.join(SIM_BUSES)}") from None
    try:
        inspect.signature(cls).bind(*args, **options)
    except TypeError as e:
        raise ConfigError(f"simulator {simulator!r} ({cls.__module__}.{cls.__name__}): {e}") from None
    return cls(*args, **options)
